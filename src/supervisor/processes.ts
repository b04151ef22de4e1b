/**
 * Which live processes belong to a listener directory: its supervisord (from the pidfile, verified, since pidfiles
 * outlive crashes and PIDs get reused) and listener processes left behind when that supervisord was killed.
 */
import { readFileSync, readdirSync, realpathSync } from "node:fs";
import { CONF_MARKER_ENV, supervisorPaths } from "./config.js";
import { isProcessAlive, processCommand, processCwd, processEnvironment, processGroup, processParent, processState, waitForExit } from "./proc.js";
import { log } from "../log.js";

function realpathOrSelf(path: string): string {
  try {
    return realpathSync(path);
  } catch {
    return path;
  }
}

export function readPidfile(listenerDir: string): number | null {
  try {
    const pid = Number(readFileSync(supervisorPaths(listenerDir).pidfile, "utf8").trim());
    return Number.isInteger(pid) && pid > 1 ? pid : null;
  } catch {
    return null;
  }
}

function isSupervisord(pid: number): boolean {
  const cmd = processCommand(pid);
  return cmd !== null && (cmd.comm.includes("supervisord") || cmd.argv.slice(0, 2).some((a) => a.includes("supervisord")));
}

/**
 * The PID of a live supervisord started from this directory's config, or null. It must be alive (not a zombie),
 * be a supervisord, and run in this directory (our config sets directory=%(here)s) or name our config on its
 * command line; when its cwd cannot be read (another user's process) the name check alone decides.
 */
export function liveSupervisordPid(listenerDir: string): number | null {
  const pid = readPidfile(listenerDir);
  if (pid === null || !isProcessAlive(pid) || !isSupervisord(pid)) return null;
  const { dir, conf } = supervisorPaths(listenerDir);
  const cwd = processCwd(pid);
  if (cwd === null || realpathOrSelf(cwd) === realpathOrSelf(dir)) return pid;
  const argv = processCommand(pid)?.argv ?? [];
  return argv.some((a) => realpathOrSelf(a) === realpathOrSelf(conf)) ? pid : null;
}

function hasSupervisordAncestor(pid: number): boolean {
  for (let p = processParent(pid), hops = 0; p !== null && p > 1 && hops < 64; p = processParent(p), hops++) {
    if (isSupervisord(p) && isProcessAlive(p)) return true;
  }
  return false;
}

/**
 * Processes started for this directory's program (they carry our config path in their environment) that no live
 * supervisord manages any more: what remains after `kill -9 supervisord`. Processes we may not inspect are skipped.
 */
export function orphanedPrograms(listenerDir: string): number[] {
  const conf = realpathOrSelf(supervisorPaths(listenerDir).conf);
  const orphans: number[] = [];
  for (const name of readdirSync("/proc")) {
    const pid = Number(name);
    if (!Number.isInteger(pid) || pid === process.pid || !isProcessAlive(pid)) continue;
    const marker = processEnvironment(pid)?.get(CONF_MARKER_ENV);
    if (marker === undefined || realpathOrSelf(marker) !== conf) continue;
    if (!hasSupervisordAncestor(pid)) orphans.push(pid);
  }
  return orphans;
}

function signalGroupOrProcess(pid: number, signal: NodeJS.Signals): void {
  const pgid = processGroup(pid);
  const own = processGroup(process.pid);
  try {
    // supervisord puts each program in its own process group; signal that, as stopasgroup would have.
    if (pgid !== null && pgid > 1 && pgid !== own) process.kill(-pgid, signal);
    else process.kill(pid, signal);
  } catch {
    // Already gone, or not ours to signal; the wait below tells.
  }
}

/** Stop orphaned listener processes: TERM (like supervisord's stop), then KILL after `graceMs`. Returns what was found. */
export async function terminateOrphans(listenerDir: string, graceMs = 10_000): Promise<number[]> {
  const orphans = orphanedPrograms(listenerDir);
  if (orphans.length === 0) return [];
  log().warn({ listenerDir, pids: orphans }, "stopping listener processes left behind by a supervisord that died");
  for (const pid of orphans) signalGroupOrProcess(pid, "SIGTERM");
  if (await waitForExit(orphans, graceMs)) return orphans;
  for (const pid of orphans.filter(isProcessAlive)) signalGroupOrProcess(pid, "SIGKILL");
  if (!(await waitForExit(orphans, 5_000))) {
    const left = orphans.filter(isProcessAlive).map((pid) => `${pid} (state ${processState(pid)})`);
    throw new Error(`orphaned listener processes of ${listenerDir} did not exit: ${left.join(", ")}`);
  }
  return orphans;
}
