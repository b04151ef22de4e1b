import { existsSync, readFileSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

/** The checkout: the nearest directory above this file with damnit's package.json (also from dist/test/helpers). */
function repoRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (;;) {
    const pkg = join(dir, "package.json");
    if (existsSync(pkg) && (JSON.parse(readFileSync(pkg, "utf8")) as { name?: string }).name === "damnit") return dir;
    const parent = dirname(dir);
    if (parent === dir) throw new Error(`no damnit package.json above ${fileURLToPath(import.meta.url)}`);
    dir = parent;
  }
}

export const REPO_ROOT = repoRoot();
export const FIXTURES = resolve(REPO_ROOT, "../shared/fixtures/damnit");
export const DAMNIT_BIN = resolve(REPO_ROOT, "bin/damnit.js");
