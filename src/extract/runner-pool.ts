/**
 * Context runners kept alive between runs: starting one costs a Node start and compiling the HDF5 library
 * (about half a second here), more than extracting a typical run. A runner that died or was stopped is dropped.
 */
import { RunnerProcess, type RunnerLimits } from "./runner-process.js";
import { takePrestarted } from "./runner-prestart.js";

/** A job asked for a runner after its pool was closed: it is being abandoned, not failed. */
export class RunnerPoolClosedError extends Error {
  override readonly name = "RunnerPoolClosedError";
}

export class RunnerPool {
  /** idle runners with the context code stamp they last evaluated */
  private readonly idle: Array<{ runner: RunnerProcess; stamp: string }> = [];
  private readonly stamps = new Map<RunnerProcess, string>();
  private readonly all = new Set<RunnerProcess>();
  private closed = false;

  constructor(
    private readonly cwd: string,
    readonly limits: RunnerLimits,
  ) {}

  /**
   * A runner for a job on context code with fingerprint `stamp` (see contextStamp): an idle one that last ran
   * the same code, else a new one. Runners of other code are stopped (modules cannot be re-evaluated in place).
   */
  async acquire(stamp = ""): Promise<RunnerProcess> {
    if (this.closed) throw new RunnerPoolClosedError("the context runners were stopped (the process is stopping)");
    while (this.idle.length > 0) {
      const { runner, stamp: last } = this.idle.pop()!;
      if (runner.alive && last === stamp) {
        this.stamps.set(runner, stamp);
        return runner;
      }
      runner.close();
      this.all.delete(runner);
    }
    const runner = (await takePrestarted(this.cwd, this.limits)) ?? (await RunnerProcess.start(this.cwd, this.limits));
    this.all.add(runner);
    this.stamps.set(runner, stamp);
    return runner;
  }

  /**
   * Return a runner after a job. One that holds more than half the memory limit is retired: what earlier runs
   * left behind (the HDF5 library's grown heap, garbage) would count against the next run's limit.
   */
  release(runner: RunnerProcess): void {
    if (!this.closed && runner.alive && runner.rssMb() <= this.limits.memoryLimitMb / 2) {
      this.idle.push({ runner, stamp: this.stamps.get(runner) ?? "" });
      return;
    }
    runner.close();
    this.all.delete(runner);
  }

  /** The largest peak resident memory (MiB) of the runners still alive. */
  peakRssMb(): number | undefined {
    const peaks = [...this.all].map((r) => r.peakRssMb()).filter((v): v is number => v !== undefined);
    return peaks.length > 0 ? Math.max(...peaks) : undefined;
  }

  close(): void {
    this.closed = true;
    for (const runner of this.all) runner.close();
    this.all.clear();
    this.idle.length = 0;
  }
}
