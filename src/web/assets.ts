/**
 * The page's script and styles, bundled by esbuild when the server starts, into memory. Bundling at start (about
 * 50 ms) rather than at build time keeps `tsc` the only build step and the browser code plain JavaScript outside
 * the Node type-check (it needs the DOM's types, the server must not see them); nothing is written to disk, so a
 * read-only install serves too.
 */
import { existsSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { build, stop } from "esbuild";

export interface Assets {
  js: string;
  css: string;
  html: string;
}

function clientEntry(): string {
  // From dist/src/web/ (compiled) or src/web/ (run from source).
  for (const rel of ["../../../src/web/client/app.js", "./client/app.js"]) {
    const path = fileURLToPath(new URL(rel, import.meta.url));
    if (existsSync(path)) return path;
  }
  throw new Error("the web page's script (src/web/client/app.js) is missing from this install");
}

const HTML = `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>DAMNIT run table</title>
<meta name="viewport" content="width=device-width">
<link rel="stylesheet" href="/app.css"></head>
<body><div id="app">Loading…</div><script src="/app.js"></script></body></html>
`;

export async function bundleAssets(): Promise<Assets> {
  const result = await build({
    entryPoints: [clientEntry()],
    bundle: true,
    minify: true,
    format: "iife",
    target: "es2020",
    write: false,
    outdir: "/bundle",
    logLevel: "silent",
  });
  // esbuild keeps a service process for more builds: there are none.
  await stop();
  let js = "";
  let css = "";
  for (const f of result.outputFiles) {
    if (f.path.endsWith(".js")) js = f.text;
    else if (f.path.endsWith(".css")) css = f.text;
  }
  return { js, css, html: HTML };
}
