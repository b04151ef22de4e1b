/**
 * Child mode (§A.2): run a command with a recorder around it. The child gets `DAMNIT_LOOKUP_URL`,
 * `DAMNIT_LOOKUP_<SERVICE>_URL` per upstream and `DAMNIT_LOOKUP_TOKEN`; the recorder stops listening when the
 * child ends, and the caller exits with the child's status. The command runs without a shell.
 */
import { spawn } from "node:child_process";
import { constants } from "node:os";
import { lookupEnv } from "./config.js";
import type { LookupRecorder } from "./recorder.js";
import type { Upstreams } from "./config.js";

/** The child's exit status (128 + signal number when killed by a signal, as shells report it). */
export async function runChild(recorder: LookupRecorder, upstreams: Upstreams, token: string | undefined, command: readonly string[]): Promise<number> {
  const [file, ...args] = command;
  if (file === undefined) throw new Error("no command");
  const child = spawn(file, args, { stdio: "inherit", env: { ...process.env, ...lookupEnv(recorder.url, upstreams, token) } });
  const forward = (signal: NodeJS.Signals) => child.kill(signal);
  const signals: NodeJS.Signals[] = ["SIGINT", "SIGTERM", "SIGHUP"];
  for (const s of signals) process.on(s, forward);
  try {
    return await new Promise<number>((resolve, reject) => {
      child.once("error", reject);
      child.once("exit", (code, signal) => resolve(code ?? 128 + (signal ? (constants.signals[signal] ?? 0) : 0)));
    });
  } finally {
    for (const s of signals) process.off(s, forward);
  }
}
