/**
 * The context runner: a child process that evaluates context files and runs their variables, so that user code
 * crashing, hanging or eating memory never takes a job, the listener or the CLI down. It serves jobs one at a
 * time over IPC (see runner-protocol.ts) and may serve many runs in a row (reprocessing).
 */
import { describeVariables } from "../context/variables.js";
import { loadContext } from "../context/load.js";
import { hasClusterFollowUp, selectVariables, type Selection } from "../context/select.js";
import { executeRun } from "./execute.js";
import { endMarker, type FromRunner, type RunJob, type ToRunner } from "./runner-protocol.js";
import { openRunData } from "./run-data.js";
import { loadH5wasm } from "../h5/h5wasm.js";

function send(message: FromRunner): Promise<void> {
  return new Promise((resolve, reject) => process.send!(message, undefined, {}, (err) => (err ? reject(err) : resolve())));
}

async function describe(contextFile: string): Promise<void> {
  const { context, problems } = await loadContext(contextFile);
  await send({ type: "described", variables: context ? describeVariables(context) : undefined, problems });
}

async function run(job: RunJob): Promise<void> {
  const { context, problems } = await loadContext(job.contextFile);
  if (!context) {
    await send({ type: "failed", jobId: job.jobId, problems, message: "Error loading context file" });
    return;
  }
  const selection: Selection = { kind: job.kind, cluster: job.clusterJob, match: job.match, variables: job.variables };
  let selected = selectVariables(context, selection);
  const wantsProc = [...selected].some((n) => context.variables.get(n)!.data === "proc");
  let opened;
  try {
    opened = await openRunData(job.proposal, job.run, job.kind, { mock: job.mock, wantsProc, root: job.dataRoot });
  } catch (err) {
    await send({ type: "failed", jobId: job.jobId, message: `Cannot open the run's data: ${(err as Error).message}` });
    return;
  }
  try {
    for (const warning of opened.warnings) await send({ type: "log", level: "warn", message: warning });
    if (!opened.procAvailable) selected = selectVariables(context, { ...selection, procAvailable: false });
    const names = context.order.filter((n) => selected.has(n));
    const clusterFollowUp = !job.clusterJob && hasClusterFollowUp(context, selection);
    await send({ type: "selected", variables: describeVariables(context), names, total: context.variables.size, clusterFollowUp });
    const pending: Array<Promise<void>> = [];
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
        start: (name) => pending.push(send({ type: "start", name })),
        output: (output) => pending.push(send({ type: "output", output })),
        log: (level, message) => pending.push(send({ type: "log", level, message })),
      },
    );
    await Promise.all(pending);
  } finally {
    opened.close();
  }
}

async function handle(message: ToRunner): Promise<void> {
  if (message.type === "describe") return describe(message.contextFile);
  const { job } = message;
  try {
    await run(job);
  } catch (err) {
    await send({ type: "failed", jobId: job.jobId, message: `The context runner failed: ${(err as Error).stack ?? String(err)}` });
  }
  // Everything this job printed is before these markers; the parent waits for them before closing the job's log.
  await new Promise<void>((resolve) => process.stdout.write(endMarker(job.jobId), () => resolve()));
  await new Promise<void>((resolve) => process.stderr.write(endMarker(job.jobId), () => resolve()));
  await send({ type: "done", jobId: job.jobId });
}

// Files user code creates are shared with the whole team (DAMNIT runs context code with umask 0).
process.umask(0);
// A promise or timer of user code failing after its variable finished must not end the runner.
process.on("unhandledRejection", (reason) => {
  void send({ type: "log", level: "error", message: `Unhandled rejection in context code: ${(reason as Error)?.stack ?? String(reason)}` });
});
process.on("uncaughtException", (err) => {
  void send({ type: "log", level: "error", message: `Uncaught exception in context code: ${err.stack ?? String(err)}` });
});
// Compiling the HDF5 library takes a while; start now, while the parent prepares the job.
void loadH5wasm().catch(() => {});
let queue = Promise.resolve();
process.on("message", (message: ToRunner) => {
  queue = queue.then(() => handle(message));
});
process.on("disconnect", () => process.exit(0));
void send({ type: "ready" });
