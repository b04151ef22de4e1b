import { cpSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach } from "vitest";
import { FIXTURES } from "./paths.js";

export { REPO_ROOT, FIXTURES, DAMNIT_BIN } from "./paths.js";

const made: string[] = [];

/** A fresh temporary directory, removed after the test. */
export function tempDir(prefix = "damnit-test-"): string {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  made.push(dir);
  return dir;
}

afterEach(() => {
  for (const dir of made.splice(0)) rmSync(dir, { recursive: true, force: true });
});


/** Copy a DAMNIT fixture directory (v0, v1, v4) somewhere writable; fixtures must never be opened in place. */
export function copyFixture(version: "v0" | "v1" | "v4"): string {
  const dir = join(tempDir(`damnit-${version}-`), version);
  cpSync(join(FIXTURES, version), dir, { recursive: true });
  return dir;
}
