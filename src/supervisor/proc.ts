/**
 * Facts about processes from /proc. `kill -0` is not enough here: PID 1 on some machines reaps orphans lazily, so a
 * daemon that has exited can linger as a zombie for seconds, and a zombie answers `kill -0` like a live process.
 */
import { readFileSync, readlinkSync } from "node:fs";
import { setTimeout as sleep } from "node:timers/promises";

function readProc(pid: number, file: string): string | null {
  try {
    return readFileSync(`/proc/${pid}/${file}`, "utf8");
  } catch {
    return null;
  }
}

/** Fields of /proc/PID/stat after the command name (state, ppid, pgrp, ...), or null when there is no such process. */
function statFields(pid: number): string[] | null {
  const stat = readProc(pid, "stat");
  // comm (in parentheses) may itself contain ") ", so look after the last one.
  return stat === null ? null : stat.slice(stat.lastIndexOf(")") + 2).split(" ");
}

function numberField(pid: number, index: number): number | null {
  const value = Number(statFields(pid)?.[index]);
  return Number.isInteger(value) ? value : null;
}

/** The one-letter state (R, S, D, Z, ...) or null when there is no such process. */
export function processState(pid: number): string | null {
  return statFields(pid)?.[0] ?? null;
}

export function processParent(pid: number): number | null {
  return numberField(pid, 1);
}

export function processGroup(pid: number): number | null {
  return numberField(pid, 2);
}

/** Alive means: exists and is not a zombie. */
export function isProcessAlive(pid: number): boolean {
  const state = processState(pid);
  return state !== null && state !== "Z" && state !== "X";
}

export function processCommand(pid: number): { comm: string; argv: string[] } | null {
  const comm = readProc(pid, "comm");
  const cmdline = readProc(pid, "cmdline");
  if (comm === null && cmdline === null) return null;
  return { comm: (comm ?? "").trim(), argv: (cmdline ?? "").split("\0").filter((a) => a !== "") };
}

/** The working directory, or null when it cannot be read (gone, or another user's process). */
export function processCwd(pid: number): string | null {
  try {
    return readlinkSync(`/proc/${pid}/cwd`);
  } catch {
    return null;
  }
}

/** The environment, or null when it cannot be read. */
export function processEnvironment(pid: number): Map<string, string> | null {
  const raw = readProc(pid, "environ");
  if (raw === null) return null;
  const env = new Map<string, string>();
  for (const entry of raw.split("\0")) {
    const eq = entry.indexOf("=");
    if (eq > 0) env.set(entry.slice(0, eq), entry.slice(eq + 1));
  }
  return env;
}

/** Poll `check` until it returns a value other than undefined, or give up after `timeoutMs` (returns undefined). */
export async function pollUntil<T>(
  check: () => T | undefined | Promise<T | undefined>,
  { timeoutMs, intervalMs = 200 }: { timeoutMs: number; intervalMs?: number },
): Promise<T | undefined> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await check();
    if (value !== undefined) return value;
    if (Date.now() >= deadline) return undefined;
    await sleep(Math.min(intervalMs, Math.max(0, deadline - Date.now())));
  }
}

/** Wait until none of `pids` is alive (zombies count as gone). True when they all went within the time. */
export async function waitForExit(pids: readonly number[], timeoutMs: number): Promise<boolean> {
  const done = await pollUntil(() => (pids.some(isProcessAlive) ? undefined : true), { timeoutMs, intervalMs: 100 });
  return done === true;
}
