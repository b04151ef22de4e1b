/**
 * Driving a listener directory's supervisord: status, start (DAMNIT's `start_listener`, made safer), restart, stop,
 * shutdown. Decisions follow supervisorctl's exit codes (0 running, 3 not running, 4 unreachable / no such program)
 * and read the status text only for details.
 */
import { closeSync, existsSync, fstatSync, openSync, readSync } from "node:fs";
import { makePrivate, privateFileMode } from "../core/private-files.js";
import { isNodeError } from "../core/node-errors.js";
import { log } from "../log.js";
import { PROGRAM_NAME, readSupervisorConfig, supervisorPaths, writeSupervisorConfig, type SupervisedProgram } from "./config.js";
import { pollUntil, waitForExit } from "./proc.js";
import { liveSupervisordPid, readPidfile, terminateOrphans } from "./processes.js";
import { runCommand, type RunResult } from "./run.js";

export type ProgramState = "RUNNING" | "STOPPED" | "STARTING" | "BACKOFF" | "FATAL" | "EXITED" | "STOPPING" | "UNKNOWN";

const STATES: readonly ProgramState[] = ["RUNNING", "STOPPED", "STARTING", "BACKOFF", "FATAL", "EXITED", "STOPPING"];

export interface ProgramStatus {
  state: ProgramState;
  pid?: number;
  uptime?: string;
  /** Whether supervisord answered at all (false: not running, or not reachable with this config). */
  daemonUp: boolean;
  /** supervisorctl's exit code; null when no supervisorctl was run (no config). */
  code: number | null;
  /** supervisorctl's output, for people. */
  text: string;
}

export interface CtlResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

export interface StartResult {
  /** What had to be done: start supervisord, start the program in a running supervisord, or nothing. */
  started: "daemon" | "program" | "already-running";
  pid: number;
  port: number;
  serverUrl: string;
  supervisordPid: number | null;
}

const STATUS_TIMEOUT_MS = 15_000;
// stop waits for the program to exit: up to stopwaitsecs (30 s) before supervisord resorts to SIGKILL.
const STOP_TIMEOUT_MS = 60_000;
const DAEMON_UP_TIMEOUT_MS = 10_000;
const RUNNING_TIMEOUT_MS = 10_000;
const SHUTDOWN_TIMEOUT_MS = 15_000;

async function runSupervisorBinary(name: "supervisorctl" | "supervisord", args: string[], cwd: string, timeoutMs: number): Promise<RunResult> {
  try {
    return await runCommand(name, args, { cwd, timeoutMs });
  } catch (err) {
    if (isNodeError(err, "ENOENT")) {
      throw new Error(`${name} is not installed (not found on PATH): install Debian's "supervisor" package (apt-get install supervisor)`);
    }
    throw err;
  }
}

/** `supervisorctl -c <dir>/supervisord.conf ...args`; never the system-wide config. */
export async function supervisorctl(listenerDir: string, args: string[], { timeoutMs = 30_000 }: { timeoutMs?: number } = {}): Promise<CtlResult> {
  const { dir, conf } = supervisorPaths(listenerDir);
  if (!existsSync(conf)) throw new Error(`no supervisord.conf in ${dir}: start the listener there with \`damnit listen --daemonize\``);
  const result = await runSupervisorBinary("supervisorctl", ["-c", conf, ...args], dir, timeoutMs);
  if (result.timedOut) throw new Error(`supervisorctl ${args.join(" ")} gave no answer within ${timeoutMs / 1000} s (${conf})`);
  return { code: result.code, stdout: result.stdout, stderr: result.stderr };
}

export function parseStatus(code: number | null, stdout: string, stderr: string): ProgramStatus {
  const text = `${stdout}${stderr}`.trim();
  const line = new RegExp(`^${PROGRAM_NAME}\\s+([A-Z]+)\\b[ \\t]*(.*)$`, "m").exec(stdout);
  if (line) {
    const state = STATES.includes(line[1] as ProgramState) ? (line[1] as ProgramState) : "UNKNOWN";
    const running = /pid (\d+), uptime (\S+)/.exec(line[2]!);
    return {
      state,
      ...(running ? { pid: Number(running[1]), uptime: running[2]! } : {}),
      daemonUp: true,
      code,
      text,
    };
  }
  // 4 is both "cannot reach supervisord" and "no such program" (a supervisord whose config lacks ours).
  const daemonUp = code !== 4 || /no such (process|group)/.test(text);
  return { state: "UNKNOWN", daemonUp, code, text };
}

export async function programStatus(listenerDir: string): Promise<ProgramStatus> {
  const { dir, conf } = supervisorPaths(listenerDir);
  if (!existsSync(conf)) return { state: "UNKNOWN", daemonUp: false, code: null, text: `no supervisord.conf in ${dir}` };
  const r = await supervisorctl(listenerDir, ["status", PROGRAM_NAME], { timeoutMs: STATUS_TIMEOUT_MS });
  return parseStatus(r.code, r.stdout, r.stderr);
}

export async function isListenerRunning(listenerDir: string): Promise<boolean> {
  return (await programStatus(listenerDir)).state === "RUNNING";
}

/** The last lines of a log file (at most the last 8 KiB), for error messages. */
export function tailFile(path: string, maxLines = 20): string {
  let fd: number;
  try {
    fd = openSync(path, "r");
  } catch {
    return "";
  }
  try {
    const size = fstatSync(fd).size;
    const length = Math.min(size, 8192);
    const buf = Buffer.alloc(length);
    readSync(fd, buf, 0, length, size - length);
    return buf.toString("utf8").trimEnd().split("\n").slice(-maxLines).join("\n");
  } finally {
    closeSync(fd);
  }
}

/**
 * supervisord's pidfile and logs are the owner's alone, like the conf: 0600, or 0640 to the listener directory's
 * group (colleagues may read them for status). Only the owner's files are changed.
 */
function shareFiles(listenerDir: string): void {
  const p = supervisorPaths(listenerDir);
  const wanted = privateFileMode(p.dir);
  for (const file of [p.conf, p.pidfile, p.log, p.outLog, p.errLog]) {
    try {
      makePrivate(file, wanted);
    } catch (err) {
      if (!isNodeError(err, "ENOENT") && !isNodeError(err, "EPERM")) throw err;
    }
  }
}

function notRunningError(listenerDir: string, what: string, status: ProgramStatus): Error {
  const detail = status.text ? `: ${status.text}` : "";
  const errLog = supervisorPaths(listenerDir).errLog;
  const tail = tailFile(errLog);
  return new Error(`${what}: the listener is ${status.state}${detail}${tail ? `\nLast lines of ${errLog}:\n${tail}` : ""}`);
}

/** Wait (bounded) for RUNNING; stop early at FATAL (supervisord gave up) or when supervisord goes away. */
async function waitForRunning(listenerDir: string, timeoutMs = RUNNING_TIMEOUT_MS): Promise<ProgramStatus> {
  let last: ProgramStatus | undefined;
  const done = await pollUntil(
    async () => {
      last = await programStatus(listenerDir);
      return last.state === "RUNNING" || last.state === "FATAL" || !last.daemonUp ? last : undefined;
    },
    { timeoutMs },
  );
  return done ?? last!;
}

/** Start supervisord from a fresh config (new port and credentials), after making sure no older one is left. */
async function startDaemon(listenerDir: string, program: SupervisedProgram, status: ProgramStatus): Promise<void> {
  const p = supervisorPaths(listenerDir);
  const alive = liveSupervisordPid(listenerDir);
  if (alive !== null) {
    // A second supervisord would fight over the pidfile and start a second listener.
    throw new Error(
      `supervisord (pid ${alive}) from ${p.conf} is running but does not answer (${status.text}); ` +
        `stop it (kill ${alive}) and start the listener again`,
    );
  }
  // After `kill -9 supervisord` its listener keeps running; a fresh supervisord would start a second one.
  await terminateOrphans(listenerDir);
  for (let attempt = 1; ; attempt++) {
    const config = await writeSupervisorConfig(listenerDir, program);
    const r = await runSupervisorBinary("supervisord", ["-c", p.conf], p.dir, 15_000);
    const output = `${r.stdout}${r.stderr}`.trim();
    if (r.code === 0 && !r.timedOut) {
      log().info({ listenerDir: p.dir, port: config.port }, "started supervisord");
      break;
    }
    // The free port we picked can be taken before supervisord binds it: pick another, once.
    if (attempt === 1 && /already listening on a port/i.test(output)) continue;
    throw new Error(`supervisord did not start (${r.timedOut ? "timed out" : `exit ${r.code}`}): ${output || "no output"}`);
  }
  // supervisord returns once it has forked; the daemon writes its pidfile and answers a moment later.
  const up = await pollUntil(async () => ((await programStatus(listenerDir)).daemonUp ? true : undefined), { timeoutMs: DAEMON_UP_TIMEOUT_MS });
  if (!up) {
    const tail = tailFile(p.log);
    throw new Error(`supervisord did not start: no answer within ${DAEMON_UP_TIMEOUT_MS / 1000} s${tail ? `\nLast lines of ${p.log}:\n${tail}` : ""}`);
  }
}

/**
 * Make sure the listener of `listenerDir` runs under its supervisord (DAMNIT's `start_listener`): write the config if
 * there is none; if supervisord cannot be reached, start a new one from a rewritten config; if the program is
 * stopped, start it. Then wait until it is RUNNING, or fail with its state and the end of its stderr log.
 */
export async function startListenerDaemon(listenerDir: string, program: SupervisedProgram): Promise<StartResult> {
  const p = supervisorPaths(listenerDir);
  if (!existsSync(p.conf)) await writeSupervisorConfig(listenerDir, program);
  let status = await programStatus(listenerDir);
  let started: StartResult["started"] = "already-running";
  if (!status.daemonUp) {
    await startDaemon(listenerDir, program, status);
    started = "daemon";
  } else if (status.state === "UNKNOWN") {
    // It answers but not usefully: wrong credentials (config rewritten under it) or no [program:damnit].
    throw new Error(`supervisord at ${readSupervisorConfig(listenerDir)?.serverUrl} does not manage the listener (${status.text}); shut it down first`);
  } else if (status.state !== "RUNNING" && status.state !== "STARTING" && status.state !== "BACKOFF") {
    if (status.state === "STOPPING") {
      const notStopping = async (): Promise<ProgramStatus | undefined> => {
        const s = await programStatus(listenerDir);
        return s.state === "STOPPING" ? undefined : s;
      };
      status = (await pollUntil(notStopping, { timeoutMs: STOP_TIMEOUT_MS })) ?? status;
    }
    // Exit code is not trusted ("already started" exits 0, "spawn error" 7); the state check below decides.
    await supervisorctl(listenerDir, ["start", PROGRAM_NAME], { timeoutMs: STOP_TIMEOUT_MS });
    started = "program";
    log().info({ listenerDir: p.dir, from: status.state }, "asked supervisord to start the listener");
  }
  const final = await waitForRunning(listenerDir);
  shareFiles(listenerDir);
  if (final.state !== "RUNNING" || final.pid === undefined) throw notRunningError(listenerDir, "the listener did not start", final);
  const config = readSupervisorConfig(listenerDir)!;
  return { started, pid: final.pid, port: config.port, serverUrl: config.serverUrl, supervisordPid: readPidfile(listenerDir) };
}

function requireDaemon(listenerDir: string, status: ProgramStatus): void {
  if (!status.daemonUp) {
    throw new Error(`supervisord for ${supervisorPaths(listenerDir).dir} is not running (${status.text}); start the listener with \`damnit listen --daemonize\``);
  }
}

/** Restart the program (new process) and wait until it is RUNNING again. */
export async function restartListener(listenerDir: string): Promise<ProgramStatus> {
  requireDaemon(listenerDir, await programStatus(listenerDir));
  const r = await supervisorctl(listenerDir, ["restart", PROGRAM_NAME], { timeoutMs: STOP_TIMEOUT_MS });
  requireDaemon(listenerDir, parseStatus(r.code, r.stdout, r.stderr));
  const final = await waitForRunning(listenerDir);
  shareFiles(listenerDir);
  if (final.state !== "RUNNING") throw notRunningError(listenerDir, "the listener did not restart", final);
  return final;
}

/** Stop the program (SIGTERM to its process group; SIGKILL after 30 s). Stopping a stopped listener is fine. */
export async function stopListener(listenerDir: string): Promise<ProgramStatus> {
  const before = await programStatus(listenerDir);
  if (!before.daemonUp) return before;
  await supervisorctl(listenerDir, ["stop", PROGRAM_NAME], { timeoutMs: STOP_TIMEOUT_MS });
  const after = await programStatus(listenerDir);
  if (after.daemonUp && !["STOPPED", "EXITED", "FATAL"].includes(after.state)) {
    throw new Error(`the listener did not stop: it is ${after.state} (${after.text})`);
  }
  return after;
}

/**
 * Shut supervisord down (stopping the listener first) and wait until its process is really gone. The PID is read
 * before asking, because supervisord deletes its pidfile before it exits. An unreachable but live supervisord of
 * this directory gets SIGTERM, which it treats as shutdown.
 */
export async function shutdownSupervisor(
  listenerDir: string,
  { timeoutMs = SHUTDOWN_TIMEOUT_MS }: { timeoutMs?: number } = {},
): Promise<{ wasRunning: boolean; pid?: number }> {
  const pid = liveSupervisordPid(listenerDir);
  const asked = existsSync(supervisorPaths(listenerDir).conf)
    ? await supervisorctl(listenerDir, ["shutdown"], { timeoutMs: STATUS_TIMEOUT_MS })
    : null;
  const accepted = asked?.code === 0;
  if (!accepted) {
    if (pid === null) return { wasRunning: false };
    log().warn({ pid, output: `${asked?.stdout ?? ""}${asked?.stderr ?? ""}`.trim() }, "supervisord does not answer; sending SIGTERM");
    try {
      process.kill(pid, "SIGTERM");
    } catch {
      // Gone already.
    }
  }
  if (pid !== null && !(await waitForExit([pid], timeoutMs))) {
    throw new Error(`supervisord (pid ${pid}) was asked to shut down but is still running after ${timeoutMs / 1000} s`);
  }
  return pid === null ? { wasRunning: true } : { wasRunning: true, pid };
}
