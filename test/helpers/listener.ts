/** A real `damnit listen` process for tests: its log lines, waiting for one, and stopping it (bounded). */
import { spawn, type ChildProcess } from "node:child_process";
import { mkdirSync } from "node:fs";
import { join } from "node:path";
import { DAMNIT_BIN } from "./paths.js";
import { damnit } from "./cli.js";

export interface LogLine {
  level: number;
  /** pino's time of the line, ms since the epoch */
  time: number;
  msg: string;
  [key: string]: unknown;
}

export class ListenerProcess {
  /** listeners not stopped yet, for a last clean-up (e.g. a benchmark interrupted) */
  static readonly live = new Set<ListenerProcess>();
  readonly lines: LogLine[] = [];
  readonly child: ChildProcess;
  private text = "";
  private exited: Promise<{ code: number | null; signal: string | null }>;

  constructor(
    readonly dir: string,
    env: Record<string, string | undefined> = {},
    /** more arguments of `damnit listen` (e.g. --audit-only) */
    args: readonly string[] = [],
  ) {
    this.child = spawn(process.execPath, [DAMNIT_BIN, "listen", dir, ...args], {
      env: { ...process.env, DAMNIT_LOG_FORMAT: "json", ...env },
      stdio: ["ignore", "pipe", "pipe"],
      detached: true, // its own process group: kill9() takes its context runners too
    });
    ListenerProcess.live.add(this);
    this.child.stdout!.setEncoding("utf8");
    this.child.stderr!.setEncoding("utf8");
    const take = (chunk: string) => {
      this.text += chunk;
      let nl: number;
      while ((nl = this.text.indexOf("\n")) >= 0) {
        const line = this.text.slice(0, nl);
        this.text = this.text.slice(nl + 1);
        try {
          this.lines.push(JSON.parse(line) as LogLine);
        } catch {
          this.lines.push({ level: 30, time: Date.now(), msg: line });
        }
      }
    };
    this.child.stdout!.on("data", take);
    this.child.stderr!.on("data", take);
    this.exited = new Promise((resolve) => this.child.on("exit", (code, signal) => resolve({ code, signal })));
  }

  get output(): string {
    return this.lines.map((l) => l.msg).join("\n");
  }

  tail(n = 15): string {
    return this.lines
      .slice(-n)
      .map((l) => `  ${l.msg}`)
      .join("\n");
  }

  private get running(): boolean {
    return this.child.exitCode === null && this.child.signalCode === null;
  }

  /**
   * The first log line from index `from` on matching `pattern`, with its index; rejects after `timeoutMs`, when the
   * listener exits, or when a line matches `failOn`, with the log so far.
   */
  async waitFor(pattern: RegExp, timeoutMs = 30_000, from = 0, failOn?: RegExp): Promise<LogLine & { index: number }> {
    const deadline = Date.now() + timeoutMs;
    let i = from;
    for (;;) {
      for (; i < this.lines.length; i++) {
        const line = this.lines[i]!;
        if (pattern.test(line.msg)) return { ...line, index: i };
        if (failOn?.test(line.msg)) throw new Error(`listener logged a failure while waiting for ${pattern}: ${line.msg}\n${this.output}`);
      }
      if (!this.running) throw new Error(`listener exited (${this.child.exitCode ?? this.child.signalCode}) before ${pattern}:\n${this.output}`);
      if (Date.now() > deadline) throw new Error(`no log line ${pattern} within ${timeoutMs} ms:\n${this.output}`);
      await new Promise((r) => setTimeout(r, 5));
    }
  }

  /** SIGTERM, and the exit status (SIGKILL after `timeoutMs`); then anything left of its process group goes. */
  async stop(timeoutMs = 20_000): Promise<{ code: number | null; signal: string | null }> {
    if (this.running) this.child.kill("SIGTERM");
    const timer = setTimeout(() => void this.kill9(), timeoutMs);
    try {
      return await this.exited;
    } finally {
      clearTimeout(timer);
      this.killGroup();
    }
  }

  /** kill -9 of the listener and everything it started (its process group). */
  kill9(): Promise<{ code: number | null; signal: string | null }> {
    this.killGroup();
    return this.exited;
  }

  private killGroup(): void {
    ListenerProcess.live.delete(this);
    try {
      process.kill(-this.child.pid!, "SIGKILL");
    } catch {
      // gone
    }
  }
}

/** A listener directory with `dbDir` registered for `proposal` and the given settings. */
export function listenerDir(parent: string, proposal: number, dbDir: string, settings: Record<string, string> = {}): string {
  const dir = join(parent, "listener");
  mkdirSync(dir, { recursive: true });
  const add = damnit(["listener", "add", String(proposal), dbDir, "-C", dir]);
  if (add.status !== 0) throw new Error(`listener add failed: ${add.stderr}`);
  for (const [key, value] of Object.entries(settings)) {
    const set = damnit(["listener", "config", key, value, "-C", dir]);
    if (set.status !== 0) throw new Error(`listener config ${key} failed: ${set.stderr}`);
  }
  return dir;
}

/** A database made by `damnit demo` (proposal 1234, runs 1..n, data under <dir>/data), set up for small Slurm jobs. */
export function demoDatabase(parent: string, runs = 1): string {
  const dir = join(parent, "db");
  const demo = damnit(["demo", dir, "--runs", String(runs)]);
  if (demo.status !== 0) throw new Error(`demo failed: ${demo.stderr}`);
  for (const [key, value] of [["noncluster_cpus", "1"], ["noncluster_mem", "1G"], ["slurm_time", "00:10:00"]]) {
    const set = damnit(["db-config", key!, value!, "-C", dir]);
    if (set.status !== 0) throw new Error(`db-config failed: ${set.stderr}`);
  }
  return dir;
}
