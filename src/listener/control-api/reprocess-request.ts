/**
 * `POST /reprocess` bodies, validated completely before anything is done (spec satellites §C.6, in sf_daq_broker's
 * order, without its defect of acting before the last check): shape (zod), identity (a proposal with databases
 * registered here, each with its runs.sqlite), ranges (run numbers, how many, each run's data directory present),
 * state (the listener paused, a database closed). The first problem is thrown as a DamnitError naming it; nothing
 * is submitted or counted then.
 */
import { existsSync } from "node:fs";
import { join } from "node:path";
import { z } from "zod";
import { closedReason } from "../../bookkeeping/closed.js";
import type { RunDataDirectory } from "../../core/data-kind.js";
import { DamnitError } from "../../core/errors.js";
import { RunDatabase } from "../../db/run-database.js";
import { peekSetting } from "../../db/peek.js";
import { findProposalDirectory, runDirectory } from "../../exdf/open-run.js";
import { parseRunList } from "../../jobs/reprocess.js";
import type { ListenerControl } from "../control.js";
import type { ListenerStore } from "../store/index.js";

/** Runs in one request at most, and the largest run number (EuXFEL run numbers have 4 digits; margin kept). */
export const MAX_RUNS_PER_REQUEST = 1000;
export const MAX_RUN_NUMBER = 999_999;

const names = z.array(z.string().min(1).max(200)).max(100);

export const reprocessBody = z
  .object({
    proposal: z.number().int().positive(),
    /** run numbers, or a list like "1-10,15" */
    runs: z.union([z.array(z.number().int()).min(1), z.string().min(1)]),
    data: z.enum(["raw", "proc"]).default("raw"),
    selection: z.object({ variables: names.optional(), match: names.optional() }).strict().optional(),
  })
  .strict();

export interface ValidReprocess {
  readonly proposal: number;
  readonly runs: readonly number[];
  readonly kind: RunDataDirectory;
  readonly variables?: readonly string[];
  readonly match?: readonly string[];
  readonly dbDirs: readonly string[];
}

export interface ReprocessContext {
  readonly store: ListenerStore;
  readonly control: ListenerControl;
  /** the listener's data root (a database's own data_root setting wins) */
  readonly dataRoot: string | undefined;
}

export async function validateReprocess(body: unknown, ctx: ReprocessContext): Promise<ValidReprocess> {
  // 1. shape
  const parsed = reprocessBody.safeParse(body ?? null);
  if (!parsed.success) {
    throw new DamnitError("BAD_ARGUMENT", `bad request: ${parsed.error.issues.map((i) => `${i.path.join(".") || "body"}: ${i.message}`).join("; ")}`);
  }
  const { proposal, data: kind, selection } = parsed.data;
  const runs = typeof parsed.data.runs === "string" ? parseRunList([parsed.data.runs]) : [...new Set(parsed.data.runs)].sort((a, b) => a - b);
  if (runs === "all") throw new DamnitError("BAD_ARGUMENT", "runs: 'all' is not accepted here; name the runs (e.g. \"1-10,15\")");

  // 2. identity
  const dbDirs = ctx.store.databases.list(proposal).map((d) => d.dbDir);
  if (dbDirs.length === 0) throw new DamnitError("NO_DATABASE", `proposal ${proposal} has no database registered with this listener (damnit listener add ${proposal} <dir>)`);
  for (const dbDir of dbDirs) {
    if (!existsSync(join(dbDir, "runs.sqlite"))) throw new DamnitError("NO_DATABASE", `the database of proposal ${proposal} at ${dbDir} does not exist (no runs.sqlite)`);
  }

  // 3. ranges
  const outside = runs.filter((r) => r < 1 || r > MAX_RUN_NUMBER);
  if (outside.length > 0) throw new DamnitError("BAD_ARGUMENT", `runs out of range (1–${MAX_RUN_NUMBER}): ${outside.slice(0, 10).join(", ")}`);
  if (runs.length > MAX_RUNS_PER_REQUEST) throw new DamnitError("BAD_ARGUMENT", `${runs.length} runs in one request; at most ${MAX_RUNS_PER_REQUEST}`);
  for (const dbDir of dbDirs) {
    const root = peekSetting(dbDir, "data_root") || ctx.dataRoot;
    const proposalDir = findProposalDirectory(proposal, root);
    const missing = runs.filter((r) => !existsSync(runDirectory(proposalDir, kind, r)));
    if (missing.length > 0) {
      throw new DamnitError("NO_RUN", `runs of proposal ${proposal} without ${kind} data in ${proposalDir}: ${missing.slice(0, 10).join(", ")}${missing.length > 10 ? ", …" : ""}`);
    }
  }

  // 4. state
  if (ctx.control.paused) throw new DamnitError("LISTENER_PAUSED", "the listener is paused: nothing is submitted until POST /resume");
  for (const dbDir of dbDirs) {
    const db = await RunDatabase.open(dbDir);
    try {
      const closed = closedReason(db);
      if (closed !== undefined) throw new DamnitError("DB_CLOSED", `${dbDir} is closed for writing (${closed})`);
      if (db.readonly) throw new DamnitError("READ_ONLY", `${db.path} is read-only here; its runs cannot be processed`);
    } finally {
      db.close();
    }
  }
  return { proposal, runs, kind, variables: selection?.variables, match: selection?.match, dbDirs };
}
