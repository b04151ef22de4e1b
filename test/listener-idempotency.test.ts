/**
 * Exactly one job per request, dispatch's side (issue 17 item 8) with a fake Slurm: the processing id and key go
 * into the job's comment; a request left 'submitting' by a killed listener is adopted when Slurm has its job,
 * submitted when Slurm has none, and not submitted when Slurm cannot say; a finished job of the same notification
 * is not repeated, a later notification of the same run is.
 */
import { join } from "node:path";
import { pino } from "pino";
import { afterEach, describe, expect, it } from "vitest";
import { RunDatabase } from "../src/db/index.js";
import type { JobRequest } from "../src/jobs/request.js";
import type { SubmitOptions, SubmittedJob } from "../src/jobs/sbatch.js";
import type { Publisher } from "../src/messaging/publisher.js";
import { dispatchRun, type DispatchOptions, type ReadyRun, type Submitter } from "../src/listener/dispatch.js";
import { LocalQueue } from "../src/listener/local-queue.js";
import { ListenerStore } from "../src/listener/store/index.js";
import { tempDir } from "./helpers/tmp.js";

class FakeSlurm implements Submitter {
  readonly submitted: Array<{ request: JobRequest; opts: SubmitOptions }> = [];
  /** comment → job id of the jobs "in squeue"; null: squeue cannot say */
  jobs: Map<string, string> | null = new Map();
  private nextId = 100;
  async submit(_dbDir: string, request: JobRequest, opts: SubmitOptions): Promise<SubmittedJob> {
    this.submitted.push({ request, opts });
    const jobId = String(this.nextId++);
    this.jobs?.set(opts.comment ?? "", jobId);
    return { jobId, cluster: "" };
  }
  async activeJobs(): Promise<Set<string>> {
    return new Set(); // every job has finished
  }
  async findJob(processingId: string): Promise<string | undefined | null> {
    if (this.jobs === null) return null;
    for (const [comment, id] of this.jobs) if (comment.startsWith(`damnit:${processingId}:`)) return id;
    return undefined;
  }
}

const publisher: Publisher = { send: async () => undefined, close: async () => undefined };
const open: Array<{ close(): void }> = [];
afterEach(() => {
  for (const o of open.splice(0)) o.close();
});

async function setup(): Promise<{ store: ListenerStore; slurm: FakeSlurm; dispatch: DispatchOptions; dbDir: string }> {
  const tmp = tempDir();
  const dbDir = join(tmp, "db");
  (await RunDatabase.open(dbDir, { create: true, initialSettings: { proposal: 1234 } })).close();
  const store = ListenerStore.open(join(tmp, "listener"));
  open.push(store);
  store.databases.add(1234, dbDir, false);
  const logger = pino({ level: "silent" });
  const slurm = new FakeSlurm();
  const local = new LocalQueue(store, publisher, logger, 1);
  open.push(local);
  const dispatch: DispatchOptions = { store, submitter: slurm, local, publisher, logger, dataRoot: join(tmp, "exp"), jobEnv: {}, localWithoutSlurm: false };
  return { store, slurm, dispatch, dbDir: store.databases.list(1234)[0]!.dbDir };
}

const ready = (run: number, addedAt = 1_700_000_000): ReadyRun => ({ proposal: 1234, run, kind: "raw", addedAt, source: `kafka test.r2d2[0]@${run} ${addedAt}` });

/** A request as a killed listener leaves it: recorded, sbatch started, its answer never read. */
function leftSubmitting(store: ListenerStore, dbDir: string, r: ReadyRun, processingId: string): void {
  store.requests.record({ processingId, dbDir, proposal: r.proposal, run: r.run, data: r.kind, source: r.source, receivedAt: r.addedAt, via: "slurm", slurmJobId: null, slurmCluster: null, state: "submitting", idempotencyKey: "k" });
}

describe("exactly one job per request", () => {
  it("puts the processing id and the idempotency key into the job's comment, recorded before the job id is known", async () => {
    const s = await setup();
    const outcomes = await dispatchRun(ready(5), s.dispatch);
    expect(outcomes.map((o) => o.action)).toEqual(["slurm"]);
    expect(s.slurm.submitted).toHaveLength(1);
    const { request, opts } = s.slurm.submitted[0]!;
    expect(opts.comment).toMatch(new RegExp(`^damnit:${request.processingId}:p1234-r5-raw-(none|[0-9a-f]{16})$`));
    const row = s.store.requests.latest()[0]!;
    expect(row).toMatchObject({ processingId: request.processingId, state: "submitted", slurmJobId: "100" });
    expect(row.idempotencyKey).toMatch(/^p1234-r5-raw-/);
  });

  it("adopts the job a killed listener's sbatch submitted instead of submitting another", async () => {
    const s = await setup();
    leftSubmitting(s.store, s.dbDir, ready(6), "pid-6");
    s.slurm.jobs!.set("damnit:pid-6:k", "77");
    const outcomes = await dispatchRun(ready(6), s.dispatch);
    expect(outcomes.map((o) => [o.action, o.detail])).toEqual([["adopted", "Slurm job 77"]]);
    expect(s.slurm.submitted).toHaveLength(0);
    expect(s.store.requests.latest().map((r) => [r.processingId, r.state, r.slurmJobId])).toEqual([["pid-6", "submitted", "77"]]);
    // Handled again (e.g. a second restart): still that one job, though it has finished meanwhile.
    expect((await dispatchRun(ready(6), s.dispatch)).map((o) => o.action)).toEqual(["adopted"]);
    expect(s.slurm.submitted).toHaveLength(0);
  });

  it("submits exactly once when the killed listener's sbatch submitted nothing", async () => {
    const s = await setup();
    leftSubmitting(s.store, s.dbDir, ready(7), "pid-7");
    expect((await dispatchRun(ready(7), s.dispatch)).map((o) => o.action)).toEqual(["slurm"]);
    expect(s.slurm.submitted).toHaveLength(1);
    const states = new Map(s.store.requests.latest().map((r) => [r.processingId, r.state]));
    expect(states.get("pid-7")).toBe("failed");
    expect([...states.values()].filter((st) => st === "submitted")).toHaveLength(1);
  });

  it("submits nothing when Slurm cannot say whether the earlier sbatch submitted", async () => {
    const s = await setup();
    leftSubmitting(s.store, s.dbDir, ready(8), "pid-8");
    s.slurm.jobs = null;
    const outcomes = await dispatchRun(ready(8), s.dispatch);
    expect(outcomes.map((o) => o.action)).toEqual(["failed"]);
    expect(outcomes[0]!.detail).toMatch(/Slurm cannot say whether p1234 r8 \(raw\) \(pid-8\) was submitted/);
    expect(s.slurm.submitted).toHaveLength(0);
  });

  it("a later notification of the same run (a new time) gets a job of its own once the first has finished", async () => {
    const s = await setup();
    await dispatchRun(ready(9), s.dispatch);
    await dispatchRun(ready(9, 1_700_000_500), s.dispatch);
    expect(s.slurm.submitted).toHaveLength(2);
  });
});
