/**
 * A context runner started at the very beginning of `damnit extract` (issue 13), before the command line is parsed
 * and the database opened: a runner's start (Node, its modules, compiling the HDF5 library) then overlaps the job
 * process's own, instead of following it. It is started with the limits of a database that leaves them at their
 * defaults and no sandbox; the job's runner pool takes it when its limits turn out to make the same process (same
 * memory limit and wrapper; the database's `context_python` is handed on), and otherwise stops it and starts its own.
 */
import { resolve } from "node:path";
import { METAMETA_DEFAULTS } from "../db/defaults.js";
import { runnerLimits } from "./job.js";
import { RunnerProcess, type RunnerLimits } from "./runner-process.js";

let prestarted:
  | { readonly cwd: string; readonly limits: RunnerLimits; readonly process: RunnerProcess; readonly ready: Promise<RunnerProcess | undefined> }
  | undefined;

/** The value of `--name` in `argv` (`--name V` or `--name=V`). */
function optionValue(argv: readonly string[], name: string): string | undefined {
  for (let i = 0; i < argv.length; i++) {
    if (argv[i] === name) return argv[i + 1];
    if (argv[i]!.startsWith(`${name}=`)) return argv[i]!.slice(name.length + 1);
  }
  return undefined;
}

/** Start a runner for `damnit extract <argv>` (its database directory from `--dir`), unless it is sandboxed. */
export function prestartForExtract(argv: readonly string[]): void {
  if (prestarted || argv.some((a) => a === "--sandbox-args" || a.startsWith("--sandbox-args=") || a === "--help" || a === "-h")) return;
  const cwd = resolve(optionValue(argv, "--dir") ?? ".");
  const limits = runnerLimits(METAMETA_DEFAULTS);
  const { runner, ready } = RunnerProcess.launch(cwd, limits);
  // Until a pool takes it, the runner must not keep the job process alive (a job failing early just exits).
  runner.holdParent(false);
  prestarted = { cwd, limits, process: runner, ready: ready.catch(() => undefined) };
}

/**
 * Limits that make the same runner process: the time limit is the parent's to enforce, and the Python interpreter
 * is only used once a job starts (adoptLimits passes it on).
 */
function sameProcess(a: RunnerLimits, b: RunnerLimits): boolean {
  return a.memoryLimitMb === b.memoryLimitMb && (a.wrapper ?? []).join("\0") === (b.wrapper ?? []).join("\0");
}

/**
 * The prestarted runner, if it was started in `cwd` with limits making the same process as `limits` (it is then
 * given `limits`); undefined otherwise, the prestarted one being stopped. Taken once.
 */
export async function takePrestarted(cwd: string, limits: RunnerLimits): Promise<RunnerProcess | undefined> {
  const taken = prestarted;
  if (!taken) return undefined;
  prestarted = undefined;
  if (taken.cwd !== resolve(cwd) || !sameProcess(taken.limits, limits)) {
    taken.process.kill();
    return undefined;
  }
  // From now on the job waits for it, and so must the process.
  taken.process.holdParent(true);
  const runner = await taken.ready;
  if (!runner?.alive) {
    taken.process.kill();
    return undefined;
  }
  runner.adoptLimits(limits);
  return runner;
}
