/**
 * The listener's auditing in this process (real SQLite files, real trail files; Slurm is a stand-in submitter, as in
 * listener-units.test.ts, so that a failing or slow sbatch can be chosen): the `audit_only` setting read at each
 * notification, a failed submission's outcome line and `.err` file, a duplicate in the listener's own trail, and
 * the `audit` setting turning the trails off. The same on the real broker and Slurm: replay-slurm.test.ts.
 */
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { pino } from "pino";
import { afterEach, describe, expect, it } from "vitest";
import { ListenerTrail } from "../src/audit/listener-trail.js";
import { readErrFile, errFilePath } from "../src/audit/err-files.js";
import { DamnitError } from "../src/core/errors.js";
import { RunDatabase } from "../src/db/index.js";
import type { JobRequest } from "../src/jobs/request.js";
import type { SubmittedJob } from "../src/jobs/sbatch.js";
import { dispatchRun, type DispatchOptions, type ReadyRun, type Submitter } from "../src/listener/dispatch.js";
import { LocalQueue } from "../src/listener/local-queue.js";
import { ListenerStore } from "../src/listener/store/index.js";
import type { Publisher } from "../src/messaging/publisher.js";
import { tempDir } from "./helpers/tmp.js";

/** Submits (job ids from 100 on) or, when `failWith` is set, fails as sbatch does. */
class StandInSlurm implements Submitter {
  readonly submitted: JobRequest[] = [];
  failWith: string | undefined;
  private next = 100;
  async submit(_dbDir: string, request: JobRequest): Promise<SubmittedJob> {
    if (this.failWith) throw new DamnitError("SUBMIT_FAILED", this.failWith);
    this.submitted.push(request);
    return { jobId: String(this.next++), cluster: "" };
  }
  async activeJobs(ids: readonly string[]): Promise<Set<string>> {
    return new Set(ids); // every job stays queued
  }
}

const publisher: Publisher = { send: async () => undefined, close: async () => undefined };
const open: Array<{ close(): void }> = [];
afterEach(() => {
  for (const o of open.splice(0)) o.close();
});

async function setup(opts: { audit?: boolean } = {}) {
  const tmp = tempDir();
  const dbDir = join(tmp, "db");
  (await RunDatabase.open(dbDir, { create: true, initialSettings: { proposal: 1234 } })).close();
  const store = ListenerStore.open(join(tmp, "listener"));
  open.push(store);
  store.databases.add(1234, dbDir, false);
  const logger = pino({ level: "silent" });
  const local = new LocalQueue(store, publisher, logger, 1);
  open.push(local);
  const trail = new ListenerTrail(store.dir, opts.audit ?? true, logger);
  open.push(trail);
  const slurm = new StandInSlurm();
  const dispatch: DispatchOptions = { store, submitter: slurm, local, publisher, logger, dataRoot: join(tmp, "exp"), jobEnv: {}, localWithoutSlurm: false, trail, audit: opts.audit };
  return { store, dbDir, slurm, dispatch, trail, trailFile: trail.path, requestsLog: join(dbDir, "audit", "requests.log") };
}

const ready = (run: number, offset: number): ReadyRun => ({ proposal: 1234, run, kind: "raw", addedAt: 1_700_000_000 + run, source: `kafka test.r2d2[0]@${offset} 1700000000000` });

function lines(file: string): Array<Record<string, unknown>> {
  if (!existsSync(file)) return [];
  return readFileSync(file, "utf8")
    .split("\n")
    .filter(Boolean)
    .map((l) => {
      expect(l).toMatch(/^\[\d{8}-\d{6}\] \{.*\}$/);
      return JSON.parse(l.slice(18)) as Record<string, unknown>;
    });
}

describe("the listener's auditing", () => {
  it("audit_only, read at each notification: requests audited, not submitted, and the run not even added", async () => {
    const s = await setup();
    s.store.settings.set("audit_only", 1);
    expect(await dispatchRun(ready(5, 7), s.dispatch)).toEqual([{ dbDir: s.dbDir, action: "audit-only", detail: expect.any(String) }]);
    expect(s.slurm.submitted).toHaveLength(0);
    const [request, outcome] = lines(s.requestsLog);
    expect(request).toMatchObject({ proposal: 1234, run: 5, origin: "kafka", kafka_offset: "7", notified_at: 1_700_000_005 });
    expect(outcome).toMatchObject({ processing_id: request!.processing_id, submit_result: "audit-only", slurm_job: null });
    const db = await RunDatabase.open(s.dbDir);
    expect(db.listRuns(1234)).toHaveLength(0);
    db.close();

    s.store.settings.set("audit_only", 0);
    expect((await dispatchRun(ready(6, 8), s.dispatch))[0]!.action).toBe("slurm");
    expect(s.slurm.submitted.map((r) => r.run)).toEqual([6]);
    expect(lines(s.requestsLog).slice(2)).toEqual([
      expect.objectContaining({ run: 6, processing_id: s.slurm.submitted[0]!.processingId }),
      expect.objectContaining({ processing_id: s.slurm.submitted[0]!.processingId, submit_result: "submitted", slurm_job: "100" }),
    ]);
  });

  it("a failed submission: its outcome line names the error and the run gets its .err; a duplicate goes to the listener's trail", async () => {
    const s = await setup();
    s.slurm.failWith = "sbatch failed (exit 1): Batch job submission failed: Invalid partition name specified";
    expect((await dispatchRun(ready(3, 1), s.dispatch))[0]).toMatchObject({ action: "failed", detail: expect.stringMatching(/Invalid partition/) });
    const [request, outcome] = lines(s.requestsLog);
    expect(outcome).toMatchObject({ processing_id: request!.processing_id, submit_result: "failed", error: expect.stringMatching(/Invalid partition/) });
    expect(readErrFile(errFilePath(s.dbDir, 1234, 3))).toMatchObject({
      ok: true,
      record: { processing_id: request!.processing_id, run: 3, kafka_offset: "1", error: expect.stringMatching(/^submission failed: .*Invalid partition/) },
    });

    s.slurm.failWith = undefined;
    await dispatchRun(ready(4, 2), s.dispatch);
    expect((await dispatchRun(ready(4, 3), s.dispatch))[0]!.action).toBe("duplicate");
    // the listener's trail is written a batch at a time, once the batch's handling is done
    await new Promise((r) => setImmediate(r));
    expect(lines(s.trailFile)).toEqual([
      expect.objectContaining({ skipped: expect.stringMatching(/^already queued or running \(Slurm job 100\)/), proposal: 1234, run: 4, kafka_offset: "3", db_dir: s.dbDir }),
    ]);
    // a proposal without a database
    await dispatchRun({ ...ready(9, 4), proposal: 4321 }, s.dispatch);
    s.trail.flush();
    expect(lines(s.trailFile).at(-1)).toMatchObject({ skipped: "no database registered for this proposal", proposal: 4321, run: 9 });
  });

  it("audit 0: no trail is written, the jobs are still submitted", async () => {
    const s = await setup({ audit: false });
    await dispatchRun(ready(4, 1), s.dispatch);
    await dispatchRun(ready(4, 2), s.dispatch);
    await dispatchRun({ ...ready(9, 4), proposal: 4321 }, s.dispatch);
    expect(s.slurm.submitted).toHaveLength(1);
    s.trail.flush();
    expect(existsSync(s.requestsLog)).toBe(false);
    expect(existsSync(s.trailFile)).toBe(false);
  });
});
