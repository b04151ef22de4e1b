/**
 * The parent's handle on one context runner process: starts it, sends it jobs, enforces the time limit per
 * variable and the memory limit, and routes everything it prints to the job it belongs to.
 */
import { fork, spawn, type ChildProcess } from "node:child_process";
import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import type { ContextProblem, VariableInfo } from "../context/variables.js";
import type { VariableError, VariableOutput } from "../core/variable-output.js";
import { endMarker, PYTHON_STOPPED_MARK, type FromRunner, type RunJob, type RunnerTimings, type StoreRequest, type ToRunner } from "./runner-protocol.js";

/** The crash a runner reported for its Python process (python-context.ts) just before it exited, if any. */
function pythonStopped(stderrTail: string): VariableError | undefined {
  const line = stderrTail.split("\n").findLast((l) => l.startsWith(PYTHON_STOPPED_MARK));
  const m = line === undefined ? null : /^(\w+): (.*)$/.exec(line.slice(PYTHON_STOPPED_MARK.length).trim());
  return m ? { cls: m[1]!, message: m[2]! } : undefined;
}

const RUNNER_SCRIPT = fileURLToPath(new URL("./runner-main.js", import.meta.url));

export interface RunnerLimits {
  /** seconds one variable (or loading the context and opening the run) may take */
  readonly variableTimeout: number;
  /** resident memory of the runner, MiB */
  readonly memoryLimitMb: number;
  /** command wrapping the runner, e.g. a sandbox: `<wrapper…> node runner.js` (spec §1.7) */
  readonly wrapper?: readonly string[];
  /** the Python interpreter for context.py (the database's context_python; run by the runner, inside the wrapper) */
  readonly contextPython?: string;
}

export interface JobHandlers {
  selected(message: Extract<FromRunner, { type: "selected" }>): void;
  start(name: string): void;
  output(output: VariableOutput): void;
  log(level: "info" | "warn" | "error", message: string): void;
  /** what user code printed (stdout/stderr of the runner), in chunks */
  userOutput(text: string): void;
}

export type JobResult =
  | { readonly kind: "done"; readonly timings?: RunnerTimings }
  | { readonly kind: "failed"; readonly message: string; readonly problems?: ContextProblem[] }
  /** the runner was stopped (time or memory limit) or died; `variable` was running then */
  | { readonly kind: "interrupted"; readonly variable?: string; readonly error: VariableError };

interface ActiveJob {
  readonly jobId: string;
  readonly handlers: JobHandlers;
  readonly limits: RunnerLimits;
  current?: string;
  timer?: NodeJS.Timeout;
  stopped?: VariableError;
  done: boolean;
  markers: number;
  finish(result: JobResult): void;
}

export class RunnerProcess {
  private active: ActiveJob | undefined;
  private describing: ((m: Extract<FromRunner, { type: "described" }>) => void) | undefined;
  private storing: ((result: { tempFile?: string; error?: string }) => void) | undefined;
  private exited = false;
  private exitReason = "";
  private stderrTail = "";
  private memoryTimer: NodeJS.Timeout | undefined;
  private jobCount = 0;
  /** Text held back per stream because it may be the start of an end marker split across chunks. */
  private readonly carry = { stdout: "", stderr: "" };

  private constructor(
    private readonly child: ChildProcess,
    private limits: RunnerLimits,
  ) {}

  /**
   * Whether this runner keeps the parent's event loop alive (its process, IPC channel and output pipes). An unused
   * prestarted runner must not keep a job process from exiting.
   */
  holdParent(hold: boolean): void {
    const handles = [this.child, this.child.channel, this.child.stdout, this.child.stderr] as Array<{ ref?(): void; unref?(): void } | null | undefined>;
    for (const handle of handles) (hold ? handle?.ref : handle?.unref)?.call(handle);
  }

  /**
   * Take over `limits` of the same memory limit and wrapper (see runner-prestart.ts); a Python interpreter for
   * context.py is passed on to the runner, which starts Python only for a job.
   */
  adoptLimits(limits: RunnerLimits): void {
    if ((limits.contextPython ?? "") !== (this.limits.contextPython ?? "")) {
      this.send({ type: "env", env: { DAMNIT_CONTEXT_PYTHON: limits.contextPython ?? "" } });
    }
    this.limits = limits;
  }

  /** Start a runner in `cwd` (context files are evaluated with cwd = the database directory). */
  static start(cwd: string, limits: RunnerLimits): Promise<RunnerProcess> {
    return RunnerProcess.launch(cwd, limits).ready;
  }

  /** Start a runner: the handle at once, and `ready` once it can take jobs (rejected if it does not start). */
  static launch(cwd: string, limits: RunnerLimits): { runner: RunnerProcess; ready: Promise<RunnerProcess> } {
    const heapMb = Math.max(512, Math.min(limits.memoryLimitMb, 16_384));
    // DAMNIT_RUNNER_NODE_ARGS: extra Node options for runners, e.g. "--cpu-prof" or "--inspect" to look into context code.
    const execArgv = [`--max-old-space-size=${heapMb}`, ...(process.env.DAMNIT_RUNNER_NODE_ARGS?.split(/\s+/).filter(Boolean) ?? [])];
    const options = {
      cwd,
      serialization: "advanced" as const,
      // The Python runner's memory limit (RLIMIT_AS) and interpreter travel with the runner's environment.
      env: {
        ...process.env,
        DAMNIT_MEMORY_LIMIT_MB: String(limits.memoryLimitMb),
        ...(limits.contextPython ? { DAMNIT_CONTEXT_PYTHON: limits.contextPython } : {}),
      },
    };
    const wrapper = limits.wrapper ?? [];
    // A wrapper (sandbox) must exec the command it is given, keeping the environment and the IPC descriptor.
    const child =
      wrapper.length > 0
        ? spawn(wrapper[0]!, [...wrapper.slice(1), process.execPath, ...execArgv, RUNNER_SCRIPT], { ...options, stdio: ["ignore", "pipe", "pipe", "ipc"] })
        : fork(RUNNER_SCRIPT, [], { ...options, stdio: ["ignore", "pipe", "pipe", "ipc"], execArgv });
    const runner = new RunnerProcess(child, limits);
    const ready = new Promise<RunnerProcess>((resolve, reject) => {
      const onExit = (code: number | null, signal: string | null) => reject(new Error(`the context runner exited at start (${signal ?? `code ${code}`}): ${runner.stderrTail.trim()}`));
      child.once("exit", onExit);
      child.once("error", reject);
      runner.attach(() => {
        child.off("exit", onExit);
        child.off("error", reject);
        resolve(runner);
      });
    });
    return { runner, ready };
  }

  /** Running and reachable (a runner whose channel broke is as good as gone). */
  get alive(): boolean {
    return !this.exited && this.child.connected;
  }

  /** Jobs this runner has been given (a reused runner carries the memory of earlier runs). */
  get jobsStarted(): number {
    return this.jobCount;
  }

  /** Current resident memory, MiB (0 once exited). */
  rssMb(): number {
    if (this.exited || !this.child.pid) return 0;
    try {
      return Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${this.child.pid}/status`, "utf8"))?.[1] ?? 0) / 1024;
    } catch {
      return 0;
    }
  }

  get pid(): number | undefined {
    return this.child.pid;
  }

  /** The runner's peak resident memory so far (VmHWM), in MiB; undefined once it has exited. */
  peakRssMb(): number | undefined {
    if (this.exited || !this.child.pid) return undefined;
    try {
      const kb = /VmHWM:\s+(\d+)/.exec(readFileSync(`/proc/${this.child.pid}/status`, "utf8"))?.[1];
      return kb === undefined ? undefined : Number(kb) / 1024;
    } catch {
      return undefined;
    }
  }

  private attach(onReady: () => void): void {
    this.child.on("message", (message: FromRunner) => {
      if (message.type === "ready") onReady();
      else this.onMessage(message);
    });
    this.child.stdout!.setEncoding("utf8").on("data", (text: string) => this.onOutput("stdout", text));
    this.child.stderr!.setEncoding("utf8").on("data", (text: string) => {
      this.stderrTail = (this.stderrTail + text).slice(-4000);
      this.onOutput("stderr", text);
    });
    // A runner that dies is handled by "exit"; failures to reach it (EPIPE) must not become uncaught errors here.
    this.child.on("error", () => {
      if (!this.exited) this.kill();
    });
    this.child.on("exit", (code, signal) => {
      this.exited = true;
      this.exitReason = signal ? `signal ${signal}` : `exit code ${code}`;
      clearInterval(this.memoryTimer);
      const job = this.active;
      if (job) {
        const heap = /heap out of memory|Allocation failed/i.test(this.stderrTail);
        const where = job.current ? ` while computing ${job.current}` : "";
        const python = pythonStopped(this.stderrTail);
        const error: VariableError = job.stopped ?? python ?? {
          cls: heap ? "MemoryError" : "RunnerCrash",
          message: heap
            ? `the context runner ran out of memory${where}`
            : `the context runner stopped (${this.exitReason})${where}`,
        };
        job.finish({ kind: "interrupted", variable: job.current, error });
      }
      this.describing?.({ type: "described", problems: [{ file: this.describingFile, message: `the context runner stopped (${this.exitReason}) while loading the context file` }] });
      this.storing?.({ error: `the context runner stopped (${this.exitReason}) while writing the results` });
    });
  }

  private describingFile = "";

  /** Load a context file in the runner and describe its variables (within the time limit for a variable). */
  describe(contextFile: string): Promise<{ variables?: VariableInfo[]; problems: ContextProblem[] }> {
    return new Promise((resolve) => {
      this.describingFile = contextFile;
      const timer = setTimeout(() => {
        this.describing?.({
          type: "described",
          problems: [{ file: contextFile, message: `loading the context file did not finish within ${this.limits.variableTimeout} s (does it run something at load?)` }],
        });
        this.kill();
      }, this.limits.variableTimeout * 1000);
      this.describing = (m) => {
        this.describing = undefined;
        clearTimeout(timer);
        resolve(m);
      };
      if (this.exited) this.describing({ type: "described", problems: [{ file: contextFile, message: `the context runner is not running (${this.exitReason})` }] });
      else this.send({ type: "describe", contextFile });
    });
  }

  /** Run one job; resolves when it is over (never rejects: failures are results). */
  run(job: RunJob, handlers: JobHandlers, limits: RunnerLimits = this.limits): Promise<JobResult> {
    if (this.active) throw new Error("a context runner runs one job at a time");
    return new Promise((resolve) => {
      let result: JobResult | undefined;
      const active: ActiveJob = {
        jobId: job.jobId,
        handlers,
        limits,
        done: false,
        markers: 0,
        finish: (r) => {
          result ??= r;
          // Interrupted: the runner is gone, nothing more will come. Otherwise wait for the output markers.
          if (r.kind === "interrupted" || active.markers >= 2) complete();
          else setTimeout(complete, 2000).unref();
        },
      };
      const complete = () => {
        if (this.active !== active) return;
        clearTimeout(active.timer);
        this.active = undefined;
        resolve(result!);
      };
      (active as { complete?: () => void }).complete = complete;
      this.active = active;
      this.jobCount++;
      this.watch(active, "loading the context file and opening the run");
      this.watchMemory();
      if (this.exited) active.finish({ kind: "interrupted", error: { cls: "RunnerCrash", message: `the context runner is not running (${this.exitReason})` } });
      else this.send({ type: "run", job });
    });
  }

  /** Have the runner write its last job's results merged with the run file; resolves to the temporary file. */
  store(request: StoreRequest, timeoutSeconds = 600): Promise<string> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.storing?.({ error: `writing the results did not finish within ${timeoutSeconds} s` });
        this.kill();
      }, timeoutSeconds * 1000);
      this.storing = (result) => {
        this.storing = undefined;
        clearTimeout(timer);
        if (result.tempFile !== undefined && result.error === undefined) resolve(result.tempFile);
        else reject(new Error(result.error ?? "the context runner wrote no file"));
      };
      if (this.exited) this.storing({ error: `the context runner is not running (${this.exitReason})` });
      else this.send({ type: "store", request });
    });
  }

  /** Stop the runner now (it also stops by itself when the parent exits, as the IPC channel closes). */
  kill(): void {
    if (!this.exited) this.child.kill("SIGKILL");
  }

  /** Let an idle runner exit by itself (so profilers and coverage can write their files); killed if it lingers. */
  close(graceMs = 2000): void {
    if (this.exited) return;
    if (this.active) return this.kill();
    this.child.disconnect();
    // It exits by itself now (on the disconnect, or its watchdog): the parent need not wait for that to exit.
    this.holdParent(false);
    setTimeout(() => this.kill(), graceMs).unref();
  }

  /** Send to the runner; if it cannot be reached, it is stopped, and its "exit" ends whatever waited for it. */
  private send(message: ToRunner): void {
    try {
      this.child.send(message, (err) => {
        if (err) this.kill();
      });
    } catch {
      this.kill();
    }
  }

  /** (Re)start the time limit for what the runner does now. */
  private watch(job: ActiveJob, activity: string): void {
    clearTimeout(job.timer);
    job.timer = setTimeout(() => {
      job.stopped = {
        cls: "TimeoutError",
        message: `${job.current ?? activity} did not finish within ${job.limits.variableTimeout} s and was stopped`,
      };
      this.kill();
    }, job.limits.variableTimeout * 1000);
  }

  private watchMemory(): void {
    if (this.memoryTimer || !this.child.pid) return;
    const statusFile = `/proc/${this.child.pid}/status`;
    this.memoryTimer = setInterval(() => {
      const job = this.active;
      if (!job || this.exited) return;
      let rssKb = 0;
      try {
        rssKb = Number(/VmRSS:\s+(\d+)/.exec(readFileSync(statusFile, "utf8"))?.[1] ?? 0);
      } catch {
        return;
      }
      if (rssKb / 1024 > job.limits.memoryLimitMb) {
        job.stopped = {
          cls: "MemoryError",
          message: `${job.current ?? "the context runner"} used more than ${job.limits.memoryLimitMb} MiB of memory and was stopped`,
        };
        this.kill();
      }
    }, 250);
    this.memoryTimer.unref();
  }

  private onMessage(message: FromRunner): void {
    if (message.type === "described") {
      this.describing?.(message);
      return;
    }
    if (message.type === "stored") {
      this.storing?.(message);
      return;
    }
    const job = this.active;
    if (!job) return;
    switch (message.type) {
      case "selected":
        job.handlers.selected(message);
        break;
      case "start":
        job.current = message.name;
        this.watch(job, message.name);
        job.handlers.start(message.name);
        break;
      case "output":
        job.handlers.output(message.output);
        break;
      case "log":
        job.handlers.log(message.level, message.message);
        break;
      case "failed":
        job.current = undefined;
        job.finish({ kind: "failed", message: message.message, problems: message.problems });
        break;
      case "done":
        job.current = undefined;
        clearTimeout(job.timer);
        job.done = true;
        job.finish({ kind: "done", timings: message.timings });
        break;
    }
  }

  /**
   * Route printed text to the active job, cutting at its end markers. A marker may arrive split over two chunks:
   * a tail that could be the start of one is held back until the next chunk.
   */
  private onOutput(stream: "stdout" | "stderr", chunk: string): void {
    const job = this.active;
    let text = this.carry[stream] + chunk;
    this.carry[stream] = "";
    if (!job) {
      // Between jobs (e.g. a timer of user code firing late): nobody's log; keep it visible.
      const clean = text.replaceAll(/\u0000damnit-job-end \S+\n/g, "");
      if (clean.trim()) process.stderr.write(clean);
      return;
    }
    const marker = endMarker(job.jobId);
    let index: number;
    while ((index = text.indexOf(marker)) >= 0) {
      if (index > 0) job.handlers.userOutput(text.slice(0, index));
      text = text.slice(index + marker.length);
      job.markers++;
    }
    const nul = text.lastIndexOf("\u0000");
    if (nul >= 0 && marker.startsWith(text.slice(nul))) {
      this.carry[stream] = text.slice(nul);
      text = text.slice(0, nul);
    }
    if (text) job.handlers.userOutput(text.replaceAll(/\u0000damnit-job-end \S+\n/g, ""));
    if (job.markers >= 2 && job.done) (job as { complete?: () => void }).complete?.();
  }
}
