/** Run a short-lived command with a hard time limit and collect its output. */
import { spawn } from "node:child_process";

export interface RunResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  timedOut: boolean;
}

export interface RunOptions {
  cwd?: string;
  timeoutMs: number;
  env?: NodeJS.ProcessEnv;
}

/**
 * Resolves on the command's exit, not on its pipes closing: `supervisord` daemonizes, and a daemon that kept our
 * pipes open would otherwise keep us waiting forever. Rejects only when the command cannot be started (e.g. ENOENT).
 */
export function runCommand(file: string, args: readonly string[], opts: RunOptions): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(file, args, { cwd: opts.cwd, env: opts.env ?? process.env, stdio: ["ignore", "pipe", "pipe"] });
    let stdout = "";
    let stderr = "";
    let timedOut = false;
    let settled = false;
    child.stdout.setEncoding("utf8").on("data", (d: string) => (stdout += d));
    child.stderr.setEncoding("utf8").on("data", (d: string) => (stderr += d));
    const timer = setTimeout(() => {
      timedOut = true;
      child.kill("SIGKILL");
    }, opts.timeoutMs);
    const finish = (code: number | null, signal: NodeJS.Signals | null): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      // A daemon still holding the pipes must not keep this process alive.
      child.stdout.destroy();
      child.stderr.destroy();
      resolve({ code, signal, stdout, stderr, timedOut });
    };
    child.on("error", (err) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      reject(err);
    });
    child.on("exit", (code, signal) => {
      // Give the pipes a moment to drain, but do not depend on them closing.
      const grace = setTimeout(() => finish(code, signal), 500);
      child.on("close", () => {
        clearTimeout(grace);
        finish(code, signal);
      });
    });
  });
}
