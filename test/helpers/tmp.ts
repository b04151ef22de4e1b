import { cpSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { afterEach } from "vitest";

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

export const REPO_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "../..");
export const FIXTURES = resolve(REPO_ROOT, "../shared/fixtures/damnit");

/** Copy a DAMNIT fixture directory (v0, v1, v4) somewhere writable; fixtures must never be opened in place. */
export function copyFixture(version: "v0" | "v1" | "v4"): string {
  const dir = join(tempDir(`damnit-${version}-`), version);
  cpSync(join(FIXTURES, version), dir, { recursive: true });
  return dir;
}
