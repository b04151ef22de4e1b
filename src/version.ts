/** This installation's damnit version, from its package.json (read once, without any other module). */
import { readFileSync } from "node:fs";

let cached: string | undefined;

export function damnitVersion(): string {
  cached ??= (JSON.parse(readFileSync(new URL("../../package.json", import.meta.url), "utf8")) as { version: string }).version;
  return cached;
}
