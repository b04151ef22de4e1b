import { spawnSync } from "node:child_process";
import { expect } from "vitest";
import { DAMNIT_BIN } from "./paths.js";

export interface CliResult {
  status: number | null;
  stdout: string;
  stderr: string;
}

/** Run the real `damnit` command (compiled code), optionally as another user (needs root). */
export function damnit(args: string[], opts: { cwd?: string; asUid?: number; env?: Record<string, string> } = {}): CliResult {
  const command = opts.asUid === undefined ? process.execPath : "setpriv";
  const prefix = opts.asUid === undefined ? [] : [`--reuid=${opts.asUid}`, `--regid=${opts.asUid}`, "--clear-groups", process.execPath];
  const result = spawnSync(command, [...prefix, DAMNIT_BIN, ...args], {
    cwd: opts.cwd,
    encoding: "utf8",
    timeout: 60_000,
    env: { ...process.env, DAMNIT_LOG_FORMAT: "json", ...opts.env },
  });
  return { status: result.status, stdout: result.stdout, stderr: result.stderr };
}

/** A user error: exit 1 and exactly one line on stderr, no stack trace. */
export function expectOneLineError(result: CliResult): string {
  if (result.status !== 1) throw new Error(`expected exit 1, got ${result.status}: ${result.stderr}`);
  const lines = result.stderr.trimEnd().split("\n");
  if (lines.length !== 1 || /\n\s+at /.test(result.stderr)) throw new Error(`expected one line, got:\n${result.stderr}`);
  return lines[0]!;
}

/**
 * Whether the read-only tests can run `damnit` as another user: root always writes, so read-only is tested as
 * `nobody`, who must be able to reach the checkout.
 */
export function otherUserCanRunDamnit(uid: number): boolean {
  const probe = spawnSync("setpriv", [`--reuid=${uid}`, `--regid=${uid}`, "--clear-groups", process.execPath, "-e", `require("fs").accessSync(${JSON.stringify(DAMNIT_BIN)})`], {
    timeout: 30_000,
  });
  return probe.status === 0;
}

/** The result of a command that must succeed (its stderr in the failure message when not). */
export function expectOk(result: CliResult): CliResult {
  expect(result.status, result.stderr).toBe(0);
  return result;
}
