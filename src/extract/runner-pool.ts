/**
 * Context runners kept alive between runs: starting one costs a Node start and compiling the HDF5 library
 * (about half a second here), more than extracting a typical run. A runner that died or was stopped is dropped.
 */
import { RunnerProcess, type RunnerLimits } from "./runner-process.js";

export class RunnerPool {
  private readonly idle: RunnerProcess[] = [];
  private readonly all = new Set<RunnerProcess>();

  constructor(
    private readonly cwd: string,
    readonly limits: RunnerLimits,
  ) {}

  async acquire(): Promise<RunnerProcess> {
    while (this.idle.length > 0) {
      const runner = this.idle.pop()!;
      if (runner.alive) return runner;
      this.all.delete(runner);
    }
    const runner = await RunnerProcess.start(this.cwd, this.limits);
    this.all.add(runner);
    return runner;
  }

  release(runner: RunnerProcess): void {
    if (runner.alive) this.idle.push(runner);
    else this.all.delete(runner);
  }

  /** Start `count` runners ahead of need, so their start overlaps other work. */
  async warm(count: number): Promise<void> {
    const started = await Promise.all(Array.from({ length: count }, () => RunnerProcess.start(this.cwd, this.limits)));
    for (const r of started) {
      this.all.add(r);
      this.idle.push(r);
    }
  }

  /** The largest peak resident memory (MiB) of the runners still alive. */
  peakRssMb(): number | undefined {
    const peaks = [...this.all].map((r) => r.peakRssMb()).filter((v): v is number => v !== undefined);
    return peaks.length > 0 ? Math.max(...peaks) : undefined;
  }

  close(): void {
    for (const runner of this.all) runner.close();
    this.all.clear();
    this.idle.length = 0;
  }
}
