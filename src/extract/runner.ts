/**
 * The context runner: a child process that evaluates context files and runs their variables, so that user code
 * crashing, hanging or eating memory never takes a job, the listener or the CLI down. It serves jobs one at a
 * time over IPC (see runner-protocol.ts) and may serve many runs in a row (reprocessing).
 */
import { statSync } from "node:fs";
import { Worker } from "node:worker_threads";
import { DamnitError } from "../core/errors.js";
import { describeVariables } from "../context/variables.js";
import { loadContext } from "../context/load.js";
import { hasClusterFollowUp, selectVariables, type Selection } from "../context/select.js";
import { openPythonRun, pythonContextAlive } from "../context/python-context.js";
import { executeRun } from "./execute.js";
import { prepareRunOutput } from "./h5-output.js";
import type { VariableOutput } from "../core/variable-output.js";
import { endMarker, type FromRunner, type RunJob, type RunnerTimings, type StoreRequest, type ToRunner } from "./runner-protocol.js";
import { readClock } from "../exdf/read-clock.js";
import { openRunData } from "./run-data.js";
import { loadH5wasm } from "../h5/h5wasm.js";
import { runCalibration } from "../calibration/run-hook.js";

/** The real exit; context code gets one that throws (below). */
const exit = process.exit.bind(process);

/**
 * Send to the parent. Never rejects: if the channel is gone, the parent is gone, and so must we (a runner left
 * behind would keep computing for nobody).
 */
function send(message: FromRunner): Promise<void> {
  if (!process.connected) return Promise.resolve();
  return new Promise((resolve) =>
    process.send!(message, undefined, {}, (err) => {
      if (err) exit(0);
      resolve();
    }),
  );
}

/**
 * A thread that ends the runner when its parent dies, even while user code keeps the main thread busy (the IPC
 * channel's "disconnect" event cannot be handled then).
 */
function watchParent(): void {
  const watcher = new Worker(
    `const { workerData } = require("node:worker_threads");
     setInterval(() => { if (process.ppid !== workerData.parent) process.kill(process.pid, "SIGKILL"); }, 500);`,
    { eval: true, workerData: { parent: process.ppid } },
  );
  watcher.unref();
}

async function describe(contextFile: string): Promise<void> {
  const { context, problems } = await loadContextOnce(contextFile);
  await send({ type: "described", variables: context ? describeVariables(context) : undefined, problems });
}

/**
 * The context as last evaluated, reused for the next runs while the file is unchanged: re-evaluating it would
 * also throw away the JIT's work on its functions, which costs more than the rest of a small run. (So state kept
 * in module-level variables carries over between the runs one runner processes.)
 */
let cached: { file: string; stamp: string; loaded: Awaited<ReturnType<typeof loadContext>> } | undefined;

async function loadContextOnce(file: string): Promise<Awaited<ReturnType<typeof loadContext>>> {
  let stamp = "";
  try {
    const s = statSync(file);
    stamp = `${s.ino}:${s.size}:${s.mtimeMs}:${s.ctimeMs}`;
  } catch {
    // unreadable: loadContext reports it
  }
  const pythonGone = file.endsWith(".py") && !pythonContextAlive();
  if (cached && cached.file === file && cached.stamp === stamp && stamp !== "" && !pythonGone) return cached.loaded;
  const loaded = await loadContext(file);
  cached = loaded.context ? { file, stamp, loaded } : undefined;
  return loaded;
}

/** The full results of the last job, kept until the parent asks for them to be written (or the next job starts). */
let held: { jobId: string; outputs: Map<string, VariableOutput> } | undefined;

async function store(request: StoreRequest): Promise<void> {
  try {
    if (!held || held.jobId !== request.jobId) throw new Error(`no results held for job ${request.jobId}`);
    const outputs = new Map(held.outputs);
    for (const extra of request.extra) outputs.set(extra.name, extra);
    for (const name of request.keep) outputs.delete(name);
    const tempFile = await prepareRunOutput(request.file, [...outputs.values()], { provenance: request.provenance, record: request.record });
    held = undefined;
    await send({ type: "stored", jobId: request.jobId, tempFile });
  } catch (err) {
    await send({ type: "stored", jobId: request.jobId, error: (err as Error).message });
  }
}

/** What the parent needs of a result for the database: everything but the data and preview arrays. */
function rowPart(output: VariableOutput): VariableOutput {
  const { data: _data, preview: _preview, ...row } = output;
  return row;
}

/** This job's DAMNIT_LOOKUP_* variables, and none left from the runner's previous job. */
function setLookupEnv(env: Readonly<Record<string, string>> | undefined): void {
  for (const key of Object.keys(process.env)) if (key.startsWith("DAMNIT_LOOKUP_")) delete process.env[key];
  Object.assign(process.env, env ?? {});
}

async function run(job: RunJob): Promise<RunnerTimings | undefined> {
  held = { jobId: job.jobId, outputs: new Map() };
  setLookupEnv(job.lookupEnv);
  const loadStarted = performance.now();
  const { context, problems } = await loadContextOnce(job.contextFile);
  const loadSeconds = (performance.now() - loadStarted) / 1000;
  if (!context) {
    await send({ type: "failed", jobId: job.jobId, problems, message: "Error loading context file" });
    return undefined;
  }
  const selection: Selection = { kind: job.kind, cluster: job.clusterJob, match: job.match, variables: job.variables };
  let selected = selectVariables(context, selection);
  const wantsProc = [...selected].some((n) => context.variables.get(n)!.data === "proc");
  let opened;
  const openStarted = performance.now();
  try {
    opened = await openRunData(job.proposal, job.run, job.kind, { mock: job.mock, wantsProc, root: job.dataRoot });
  } catch (err) {
    await send({ type: "failed", jobId: job.jobId, message: `Cannot open the run's data: ${(err as Error).message}` });
    return undefined;
  }
  if (job.contextFile.endsWith(".py")) {
    try {
      await openPythonRun(opened.proposalPath, job.run, job.kind, job.proposal, job.lookupEnv);
    } catch (err) {
      opened.close();
      await send({ type: "failed", jobId: job.jobId, message: `The Python context runner failed: ${(err as Error).message}` });
      return undefined;
    }
  }
  const files = "files" in opened.data ? opened.data.files.length : 0;
  const openSeconds = (performance.now() - openStarted) / 1000;
  await send({ type: "log", level: "info", message: `Loaded the context file in ${loadSeconds.toFixed(2)} s; opened the run's data (${files} files) in ${openSeconds.toFixed(2)} s` });
  try {
    for (const warning of opened.warnings) await send({ type: "log", level: "warn", message: warning });
    if (!opened.procAvailable) selected = selectVariables(context, { ...selection, procAvailable: false });
    const names = context.order.filter((n) => selected.has(n));
    const clusterFollowUp = !job.clusterJob && hasClusterFollowUp(context, selection);
    await send({ type: "selected", variables: describeVariables(context), names, total: context.variables.size, clusterFollowUp, incomplete: opened.problems });
    let pending: Array<Promise<void>> = [];
    const readBefore = readClock.seconds;
    const variablesStarted = performance.now();
    const calibration = job.calibration
      ? runCalibration(job.calibration, { proposal: job.proposal, run: job.run, proposalPath: opened.proposalPath, startTime: opened.startTime })
      : undefined;
    try {
      await executeRun(
        {
          context,
          selected,
          data: opened.data,
          meta: { run_number: job.run, proposal: job.proposal, proposal_path: opened.proposalPath },
          startTime: opened.startTime,
          params: job.params,
          prefailed: new Map(job.prefailed),
          resultLimitBytes: job.resultLimitBytes,
        },
        {
          // Everything before this variable is out, and the parent knows it started, before user code can block us:
          // otherwise a hanging variable would hold back messages and its time-out be blamed on the one before.
          start: async (name) => {
            await Promise.all(pending);
            pending = [];
            calibration?.begin(name);
            await send({ type: "start", name });
          },
          output: (plain) => {
            const uses = calibration?.usesOf(plain.name) ?? [];
            const output = uses.length > 0 ? { ...plain, calibration: uses } : plain;
            held!.outputs.set(output.name, output);
            pending.push(send({ type: "output", output: rowPart(output) }));
          },
          log: (level, message) => pending.push(send({ type: "log", level, message })),
        },
      );
    } finally {
      calibration?.end();
    }
    await Promise.all(pending);
    const read = readClock.seconds - readBefore;
    return { context: loadSeconds, open: openSeconds, read, variables: (performance.now() - variablesStarted) / 1000 - read };
  } finally {
    opened.close();
  }
}

async function handle(message: ToRunner): Promise<void> {
  if (message.type === "describe") return describe(message.contextFile);
  if (message.type === "store") return store(message.request);
  if (message.type === "env") {
    Object.assign(process.env, message.env);
    return;
  }
  const { job } = message;
  let timings: RunnerTimings | undefined;
  try {
    timings = await run(job);
  } catch (err) {
    // A user's mistake (e.g. --var naming no variable) is one line; anything else is our bug and gets its stack.
    const message = err instanceof DamnitError ? err.message : `The context runner failed: ${(err as Error).stack ?? String(err)}`;
    await send({ type: "failed", jobId: job.jobId, message });
  }
  // Everything this job printed is before these markers; the parent waits for them before closing the job's log.
  await new Promise<void>((resolve) => process.stdout.write(endMarker(job.jobId), () => resolve()));
  await new Promise<void>((resolve) => process.stderr.write(endMarker(job.jobId), () => resolve()));
  await send({ type: "done", jobId: job.jobId, timings });
}

// Files user code creates are shared with the whole team (DAMNIT runs context code with umask 0).
process.umask(0);
// A promise or timer of user code failing after its variable finished must not end the runner.
process.on("unhandledRejection", (reason) => {
  if (!process.connected) exit(0);
  void send({ type: "log", level: "error", message: `Unhandled rejection in context code: ${(reason as Error)?.stack ?? String(reason)}` });
});
process.on("uncaughtException", (err) => {
  if (!process.connected) exit(0);
  void send({ type: "log", level: "error", message: `Uncaught exception in context code: ${err.stack ?? String(err)}` });
});
watchParent();
// The job process decides when its runner ends (it disconnects, or kills it). A SIGTERM sent to the whole process
// group (supervisord's stopasgroup, an interactive Ctrl-C) must not turn the variable being computed into a stored
// RunnerCrash error; if the job process itself goes, the watchdog above ends this runner.
process.on("SIGTERM", () => {});
process.on("SIGINT", () => {});
// Context code calling process.exit() (from a variable, or a timer after its job) would lose the run's results:
// it gets an error instead, recorded as the variable's error or logged.
process.exit = ((code?: number | string | null) => {
  throw new Error(`process.exit(${code ?? ""}) was called by context code; a variable should return or throw instead`);
}) as typeof process.exit;
// Compiling the HDF5 library takes a while; started by runner-main.ts, this only makes sure it is under way.
void loadH5wasm().catch(() => {});
let queue = Promise.resolve();
process.on("message", (message: ToRunner) => {
  // One message at a time; a failure of one (our bug) is reported and does not stop the ones after it.
  queue = queue
    .then(() => handle(message))
    .catch((err: unknown) => send({ type: "log", level: "error", message: `The context runner failed: ${(err as Error)?.stack ?? String(err)}` }));
});
process.on("disconnect", () => exit(0));
void send({ type: "ready" });
