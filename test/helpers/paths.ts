import { dirname, resolve } from "node:path";
import { fileURLToPath } from "node:url";

export const REPO_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "../..");
export const FIXTURES = resolve(REPO_ROOT, "../shared/fixtures/damnit");
export const DAMNIT_BIN = resolve(REPO_ROOT, "bin/damnit.js");
