#!/usr/bin/env node
// The `damnit` command. Runs the compiled code; `npm install` (or `npm run build`) compiles it into dist/.
import { existsSync } from "node:fs";

const entry = new URL("../dist/src/cli/main.js", import.meta.url);
if (!existsSync(entry)) {
  process.stderr.write("damnit: not built yet; run 'npm install' or 'npm run build' in the damnit checkout\n");
  process.exit(1);
}
const { run } = await import(entry.href);
await run();
