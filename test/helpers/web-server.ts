/** Starting a damnit command that serves the web table (web, demo --web, listen --web) and finding its address. */
import { spawn, type ChildProcess } from "node:child_process";
import { DAMNIT_BIN } from "./paths.js";

export interface ServingProcess {
  proc: ChildProcess;
  /** the page's address, http://127.0.0.1:PORT/ */
  base: string;
  /** everything it printed so far */
  output: () => string;
  stop(): Promise<void>;
}

/** Run `damnit args…` until it prints "Run table: URL" (on stdout, or in a JSON log line). */
export async function startServing(args: string[], env: Record<string, string | undefined>, timeoutMs = 60_000): Promise<ServingProcess> {
  const proc = spawn(process.execPath, [DAMNIT_BIN, ...args], { env: { ...process.env, DAMNIT_LOG_FORMAT: "json", ...env }, stdio: ["ignore", "pipe", "pipe"] });
  let out = "";
  const base = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`damnit ${args[0]} did not serve: ${out}`)), timeoutMs);
    const take = (d: Buffer) => {
      out += d.toString();
      const m = /Run table: (http:[^\s"\\]+)/.exec(out);
      if (m) {
        clearTimeout(timer);
        resolve(m[1]!);
      }
    };
    proc.stdout!.on("data", take);
    proc.stderr!.on("data", take);
    proc.on("exit", (code) => {
      clearTimeout(timer);
      reject(new Error(`damnit ${args[0]} exited ${code}: ${out}`));
    });
  });
  const exited = new Promise<void>((resolve) => proc.on("exit", () => resolve()));
  return {
    proc,
    base,
    output: () => out,
    stop: async () => {
      if (proc.exitCode === null && proc.signalCode === null) proc.kill("SIGTERM");
      await Promise.race([exited, new Promise((r) => setTimeout(r, 30_000))]);
    },
  };
}
