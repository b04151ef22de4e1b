/**
 * The three-level lookup (spec §D.6): local `<db_dir>/calib`, then the proposal's store, then the facility
 * repository (`calib_repository`); the first level with an answer wins and the answer says which level it was.
 * A level whose store does not exist is skipped; nothing anywhere is a typed CALIB_NOT_FOUND error.
 */
import { join, resolve } from "node:path";
import { CalibStore, notFound, type CalibHit } from "./store.js";

export type CalibLevel = "local" | "proposal" | "repository";

export interface LevelRoot {
  readonly level: CalibLevel;
  readonly root: string;
}

export interface LevelHit extends CalibHit {
  readonly level: CalibLevel;
  readonly root: string;
}

/** The roots to search for a database directory; empty settings leave a level out. */
export function calibRoots(opts: { dbDir: string; proposalDir?: string; proposalCalib?: string; repository?: string }): LevelRoot[] {
  const roots: LevelRoot[] = [{ level: "local", root: join(opts.dbDir, "calib") }];
  const proposal = opts.proposalCalib || (opts.proposalDir ? join(opts.proposalDir, "usr", "Shared", "amore", "calib") : "");
  if (proposal) roots.push({ level: "proposal", root: proposal });
  if (opts.repository) roots.push({ level: "repository", root: opts.repository });
  // A database in the official place (<proposal>/usr/Shared/amore) has its local store where the proposal's is:
  // searched once, as the first level that names it.
  const seen = new Set<string>();
  return roots.filter((r) => {
    const key = resolve(r.root);
    if (seen.has(key)) return false;
    seen.add(key);
    return true;
  });
}

export interface LookupQuery {
  readonly detector: string;
  readonly ctype: string;
  readonly at: number;
  readonly version?: number;
  readonly range?: string;
  /** Only this level (pinning replays the level recorded). */
  readonly level?: CalibLevel;
}

export function tryLookup(roots: readonly LevelRoot[], q: LookupQuery): LevelHit | null {
  for (const { level, root } of roots) {
    if (q.level !== undefined && q.level !== level) continue;
    if (!CalibStore.exists(root)) continue;
    const store = CalibStore.open(root, { readonly: true });
    try {
      const hit = store.tryGet(q);
      if (hit) return { ...hit, level, root };
    } finally {
      store.close();
    }
  }
  return null;
}

export function lookup(roots: readonly LevelRoot[], q: LookupQuery): LevelHit {
  const hit = tryLookup(roots, q);
  if (hit === null) throw notFound(q.detector, q.ctype, q.at, q.version, q.range);
  return hit;
}
