/**
 * A scratch copy of a database directory for `reprocess --check-reproducible`: consistent copies (VACUUM INTO)
 * of runs.sqlite and lookups.sqlite, a copy of the context file, a fresh empty extracted_data/, and symbolic links
 * to everything else at the top of the directory (helper modules, files the context reads), so the context runs
 * as it would at home while the real database, lookups and run files are never written. The copy gets a new
 * db_id, so nothing it might publish reaches the real database's update topic.
 */
import Database from "better-sqlite3";
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readdirSync, realpathSync, rmSync, symlinkSync } from "node:fs";
import { tmpdir } from "node:os";
import { basename, join } from "node:path";
import { DamnitError } from "../core/errors.js";
import { findContextFile } from "../context/load.js";
import { LOOKUPS_FILE } from "../lookups/job-recorder.js";
import { PROVENANCE_FILE } from "./store.js";

/** What the copy makes itself rather than links: the databases (and their journals), run files, logs, caches. */
const OWN = /^(runs\.sqlite|lookups\.sqlite|provenance\.sqlite)(-journal|-wal|-shm|\..*\.bak)?$|^(extracted_data|process_logs)$|^\./;

export interface Scratch {
  readonly dir: string;
  remove(): void;
}

function vacuumInto(from: string, to: string): void {
  const db = new Database(from, { readonly: true, fileMustExist: true, timeout: 30_000 });
  try {
    db.prepare("VACUUM INTO ?").run(to);
  } finally {
    db.close();
  }
}

/** Make the copy in `where` (a new directory in it) or the system's temporary directory. */
export function makeScratch(dbDir: string, where?: string): Scratch {
  const parent = where ?? tmpdir();
  if (!existsSync(parent)) mkdirSync(parent, { recursive: true });
  const dir = mkdtempSync(join(parent, "damnit-reproduce-"));
  try {
    vacuumInto(join(dbDir, "runs.sqlite"), join(dir, "runs.sqlite"));
    if (existsSync(join(dbDir, LOOKUPS_FILE))) vacuumInto(join(dbDir, LOOKUPS_FILE), join(dir, LOOKUPS_FILE));
    const context = findContextFile(dbDir);
    copyFileSync(context, join(dir, basename(context)));
    mkdirSync(join(dir, "extracted_data"));
    for (const name of readdirSync(dbDir)) {
      if (OWN.test(name) || name === basename(context) || name === PROVENANCE_FILE) continue;
      symlinkSync(realpathSync(join(dbDir, name)), join(dir, name));
    }
  } catch (err) {
    rmSync(dir, { recursive: true, force: true });
    if (err instanceof DamnitError) throw err;
    throw new DamnitError("SCRATCH_FAILED", `cannot make a scratch copy of ${dbDir} in ${parent}: ${(err as Error).message}`, { cause: err });
  }
  return { dir, remove: () => rmSync(dir, { recursive: true, force: true }) };
}
