/**
 * The listener under a REAL supervisord (Debian's `supervisor`). Skipped when supervisord is not installed, unless
 * REQUIRE_SUPERVISOR is set, in which case the suite fails instead. The supervised program is a small node script
 * behind `sh -c`, so stopping must signal the whole process group to leave no orphan.
 */
import { spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { afterEach, describe, expect, it } from "vitest";
import {
  isListenerRunning,
  programStatus,
  readSupervisorConfig,
  restartListener,
  shutdownSupervisor,
  startListenerDaemon,
  stopListener,
  supervisorPaths,
  writeSupervisorConfig,
  type SupervisedProgram,
} from "../src/supervisor/index.js";

const haveSupervisord = spawnSync("supervisord", ["--version"], { timeout: 10_000 }).status === 0;
const required = Boolean(process.env.REQUIRE_SUPERVISOR);

const CHILD = `
import { appendFileSync, writeFileSync } from "node:fs";
writeFileSync("child.pid", String(process.pid));
appendFileSync("child.pids", process.pid + "\\n");
writeFileSync("argv.json", JSON.stringify({ argv: process.argv.slice(2), testVar: process.env.TEST_VAR ?? null, path: process.env.PATH ?? null }));
process.on("SIGTERM", () => {
  appendFileSync("stopped", process.pid + "\\n");
  process.exit(0);
});
setInterval(() => {}, 1000);
`;

const dirs: string[] = [];

function listenerDir(): string {
  const dir = mkdtempSync(join(tmpdir(), "damnit-supervisor-"));
  dirs.push(dir);
  writeFileSync(join(dir, "child.mjs"), CHILD);
  return dir;
}

/** node child.mjs behind a shell that stays around (`; exit $?` keeps sh from exec'ing node). */
function program(args: string[] = [], environment?: Record<string, string>): SupervisedProgram {
  return { command: ["sh", "-c", '"$0" child.mjs "$@"; exit $?', process.execPath, ...args], ...(environment ? { environment } : {}) };
}

function alive(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    return !/^[ZX]/.test(stat.slice(stat.lastIndexOf(")") + 2));
  } catch {
    return false;
  }
}

async function waitFor<T>(what: string, check: () => T | undefined | Promise<T | undefined>, timeoutMs = 15_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await check();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs / 1000} s waiting for ${what}`);
    await sleep(100);
  }
}

function readIfExists(path: string): string | undefined {
  try {
    return readFileSync(path, "utf8");
  } catch {
    return undefined;
  }
}

/** The node child's pid once it has (re)started, different from `not`. */
function childPid(dir: string, not?: number): Promise<number> {
  return waitFor(`the child in ${dir} to write its pid`, () => {
    const pid = Number(readIfExists(join(dir, "child.pid")));
    return Number.isInteger(pid) && pid > 0 && pid !== not ? pid : undefined;
  });
}

function stoppedPids(dir: string): number[] {
  return (readIfExists(join(dir, "stopped")) ?? "").split("\n").filter(Boolean).map(Number);
}

function mode(path: string): number {
  return statSync(path).mode & 0o777;
}

afterEach(async () => {
  const problems: unknown[] = [];
  for (const dir of dirs.splice(0)) {
    try {
      await shutdownSupervisor(dir, { timeoutMs: 15_000 });
    } catch (err) {
      problems.push(err);
    }
    // Whatever happened above, leave no child behind.
    for (const pid of (readIfExists(join(dir, "child.pids")) ?? "").split("\n").filter(Boolean).map(Number)) {
      if (alive(pid)) {
        problems.push(new Error(`child ${pid} of ${dir} was still running after shutdown`));
        try {
          process.kill(pid, "SIGKILL");
        } catch {
          // gone
        }
      }
    }
    rmSync(dir, { recursive: true, force: true });
  }
  if (problems.length > 0) throw problems[0];
});

describe.skipIf(!haveSupervisord && !required)(
  haveSupervisord
    ? "the listener under real supervisord"
    : `the listener under real supervisord (${required ? "REQUIRE_SUPERVISOR is set but" : "skipped:"} supervisord is not on PATH; apt-get install supervisor)`,
  () => {
    it("has supervisord installed (REQUIRE_SUPERVISOR is set)", () => {
      expect(haveSupervisord, "supervisord is not on PATH but REQUIRE_SUPERVISOR is set").toBe(true);
    });

    it("starts from nothing: writes a private-port config and runs the program", async () => {
      const dir = listenerDir();
      const started = await startListenerDaemon(dir, program());
      expect(started.started).toBe("daemon");

      const paths = supervisorPaths(dir);
      expect(mode(paths.conf)).toBe(0o600);
      const config = readSupervisorConfig(dir)!;
      expect(config.path).toBe(paths.conf);
      expect(config.port).toBe(started.port);
      expect(config.port).toBeGreaterThan(0);
      expect(config.serverUrl).toBe(`http://127.0.0.1:${config.port}`);
      expect(readFileSync(paths.conf, "utf8")).toContain(`port=127.0.0.1:${config.port}\n`);
      expect(config.username).toMatch(/^[0-9a-f]{64}$/);
      expect(config.password).toMatch(/^[0-9a-f]{64}$/);
      expect(config.password).not.toBe(config.username);

      const status = await programStatus(dir);
      expect(status).toMatchObject({ state: "RUNNING", daemonUp: true, code: 0, pid: started.pid });
      expect(status.uptime).toMatch(/^\d+:\d\d:\d\d$/);
      expect(await isListenerRunning(dir)).toBe(true);
      expect(alive(started.pid)).toBe(true);
      expect(alive(await childPid(dir))).toBe(true);

      expect(started.supervisordPid).toBeGreaterThan(1);
      expect(alive(started.supervisordPid!)).toBe(true);
      for (const file of [paths.pidfile, paths.log, paths.outLog, paths.errLog]) expect(mode(file)).toBe(0o600);
    });

    it("is idempotent: starting a running listener does nothing", async () => {
      const dir = listenerDir();
      const first = await startListenerDaemon(dir, program());
      const second = await startListenerDaemon(dir, program());
      expect(second).toMatchObject({ started: "already-running", pid: first.pid, port: first.port, supervisordPid: first.supervisordPid });
    });

    it("restarts a program that crashes (kill -9)", async () => {
      const dir = listenerDir();
      const first = await startListenerDaemon(dir, program());
      const child = await childPid(dir);
      process.kill(child, "SIGKILL");
      const status = await waitFor("autorestart", async () => {
        const s = await programStatus(dir);
        return s.state === "RUNNING" && s.pid !== first.pid ? s : undefined;
      });
      expect(alive(status.pid!)).toBe(true);
      expect(await childPid(dir, child)).not.toBe(child);
      expect(alive(first.pid)).toBe(false); // the wrapper went with its child
    });

    it("restart gives a new process and stops the old one with SIGTERM", async () => {
      const dir = listenerDir();
      const first = await startListenerDaemon(dir, program());
      const child = await childPid(dir);
      const status = await restartListener(dir);
      expect(status.state).toBe("RUNNING");
      expect(status.pid).not.toBe(first.pid);
      expect(stoppedPids(dir)).toContain(child);
      expect(alive(child)).toBe(false);
      expect(alive(await childPid(dir, child))).toBe(true);
    });

    it("stop sends SIGTERM to the whole group (no orphan), and start brings it back", async () => {
      const dir = listenerDir();
      const first = await startListenerDaemon(dir, program());
      const child = await childPid(dir);

      const stopped = await stopListener(dir);
      expect(stopped).toMatchObject({ state: "STOPPED", code: 3, daemonUp: true });
      expect(stoppedPids(dir)).toEqual([child]);
      await waitFor("the wrapper and the node child to be gone", () => (alive(child) || alive(first.pid) ? undefined : true), 5_000);
      expect(await isListenerRunning(dir)).toBe(false);
      // Stopping again is harmless.
      expect((await stopListener(dir)).state).toBe("STOPPED");

      const again = await startListenerDaemon(dir, program());
      expect(again.started).toBe("program");
      expect(again.pid).not.toBe(first.pid);
      expect(again.supervisordPid).toBe(first.supervisordPid);
      expect(alive(await childPid(dir, child))).toBe(true);
    });

    it("after supervisord is killed -9: new port and credentials, a fresh daemon, and no duplicate listener", async () => {
      const dir = listenerDir();
      const first = await startListenerDaemon(dir, program());
      const oldConfig = readSupervisorConfig(dir)!;
      const oldChild = await childPid(dir);
      const daemon = first.supervisordPid!;
      process.kill(daemon, "SIGKILL");
      await waitFor("supervisord to die", () => (alive(daemon) ? undefined : true), 5_000);
      expect(existsSync(supervisorPaths(dir).pidfile)).toBe(true); // stale
      expect((await programStatus(dir)).daemonUp).toBe(false);

      const second = await startListenerDaemon(dir, program());
      expect(second.started).toBe("daemon");
      const newConfig = readSupervisorConfig(dir)!;
      expect(newConfig.port).not.toBe(oldConfig.port);
      expect(newConfig.password).not.toBe(oldConfig.password);
      expect(second.supervisordPid).not.toBe(daemon);
      expect(second.pid).not.toBe(first.pid);
      // The listener the dead supervisord left behind was stopped, not duplicated.
      expect(stoppedPids(dir)).toContain(oldChild);
      expect(alive(oldChild)).toBe(false);
      expect(alive(first.pid)).toBe(false);
      expect(alive(await childPid(dir, oldChild))).toBe(true);
    });

    it("passes arguments with spaces, quotes, %, ' ;' and ' #' intact, and the environment with PATH", async () => {
      const dir = listenerDir();
      const args = [
        "plain",
        "two words",
        "it's",
        'say "hi"',
        "100%",
        "%(here)s",
        "%%",
        "a ;b",
        "a #b",
        "; leading",
        "#hash",
        "",
        "tab\there",
        "back\\slash",
        "$HOME `id`",
        "ünïcödé",
      ];
      const testVar = 'x y; "z" 5%';
      await startListenerDaemon(dir, program(args, { TEST_VAR: testVar }));
      const seen = await waitFor("argv.json", () => readIfExists(join(dir, "argv.json")));
      expect(JSON.parse(seen)).toEqual({ argv: args, testVar, path: process.env.PATH ?? null });
    });

    it("a program that fails at once ends FATAL, and start says why", async () => {
      const dir = listenerDir();
      const failing: SupervisedProgram = { command: ["sh", "-c", "echo 'broken context file' >&2; exit 1"] };
      await expect(startListenerDaemon(dir, failing)).rejects.toThrow(/FATAL[\s\S]*broken context file/);
      expect((await programStatus(dir)).state).toBe("FATAL");
    });

    it("ignores a stale pidfile that names an unrelated live process", async () => {
      const dir = listenerDir();
      writeFileSync(join(dir, "supervisord.pid"), `${process.pid}\n`);
      const started = await startListenerDaemon(dir, program());
      expect(started.started).toBe("daemon");
      expect(started.supervisordPid).not.toBe(process.pid);
    });

    it("refuses to start a second supervisord when ours is alive but unreachable, and shutdown still stops it", async () => {
      const dir = listenerDir();
      const first = await startListenerDaemon(dir, program());
      const child = await childPid(dir);
      await writeSupervisorConfig(dir, program()); // new port: the running daemon no longer answers there
      await expect(startListenerDaemon(dir, program())).rejects.toThrow(new RegExp(`supervisord \\(pid ${first.supervisordPid}\\)`));

      const down = await shutdownSupervisor(dir);
      expect(down).toEqual({ wasRunning: true, pid: first.supervisordPid });
      expect(alive(first.supervisordPid!)).toBe(false);
      expect(stoppedPids(dir)).toContain(child);
      expect(alive(child)).toBe(false);
    });

    it("shutdown stops the program and waits for supervisord to exit", async () => {
      const dir = listenerDir();
      const first = await startListenerDaemon(dir, program());
      const child = await childPid(dir);
      expect(await shutdownSupervisor(dir)).toEqual({ wasRunning: true, pid: first.supervisordPid });
      expect(alive(first.supervisordPid!)).toBe(false);
      expect(stoppedPids(dir)).toEqual([child]);
      expect(alive(child)).toBe(false);
      expect(await programStatus(dir)).toMatchObject({ daemonUp: false, state: "UNKNOWN" });
      expect(await shutdownSupervisor(dir)).toEqual({ wasRunning: false });
      await expect(restartListener(dir)).rejects.toThrow(/is not running/);
    });
  },
);
