/**
 * `damnit listen --daemonize` and `damnit listener status|restart|stop|shutdown` against Debian's real supervisord
 * (skipped without it, failing instead when REQUIRE_SUPERVISOR is set).
 */
import { spawnSync } from "node:child_process";
import { existsSync, readFileSync, statSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { damnit } from "./helpers/cli.js";
import { tempDir } from "./helpers/tmp.js";

const haveSupervisord = spawnSync("supervisord", ["--version"], { timeout: 10_000 }).status === 0;
const required = Boolean(process.env.REQUIRE_SUPERVISOR);

function pidOf(statusLine: string): number {
  const m = /pid (\d+)/.exec(statusLine);
  if (!m) throw new Error(`no pid in: ${statusLine}`);
  return Number(m[1]);
}

async function until(what: string, check: () => boolean, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

describe.skipIf(!haveSupervisord && !required)(`listener under supervisord${haveSupervisord ? "" : " (supervisord not installed)"}`, () => {
  it("--daemonize starts supervisord and the listener; status, restart, stop, start again and shutdown work", async () => {
    expect(haveSupervisord, "supervisord is required (REQUIRE_SUPERVISOR) but not installed").toBe(true);
    const dir = tempDir();
    try {
      const started = damnit(["listen", "--daemonize", dir]);
      expect(started.status, started.stderr).toBe(0);
      expect(started.stdout).toMatch(/Started supervisord and the listener \(pid \d+\)/);
      const conf = readFileSync(join(dir, "supervisord.conf"), "utf8");
      expect(conf).toMatch(/port\s*=\s*127\.0\.0\.1:\d+/);
      expect(conf).toMatch(/\[program:damnit\]/);
      expect(statSync(join(dir, "supervisord.conf")).mode & 0o777).toBe(0o600);

      const status = damnit(["listener", "status", "-C", dir]);
      expect(status.status, status.stdout + status.stderr).toBe(0);
      expect(status.stdout).toMatch(/damnit\s+RUNNING\s+pid \d+/);
      const pid = pidOf(status.stdout);
      // The supervised listener is ours, listening in the listener directory (its absolute path names the Kafka
      // consumer group), logging to damnit.log.
      expect(readFileSync(`/proc/${pid}/cmdline`, "utf8").split("\0")).toEqual(expect.arrayContaining(["listen", dir]));
      await until("damnit.log", () => existsSync(join(dir, "damnit.log")) && /watching the raw/.test(readFileSync(join(dir, "damnit.log"), "utf8")));

      const again = damnit(["listen", "--daemonize", dir]);
      expect(again.stdout).toMatch(/already running \(pid (\d+)\)/);
      expect(pidOf(again.stdout)).toBe(pid);

      const restarted = damnit(["listener", "restart", "-C", dir]);
      expect(restarted.status, restarted.stderr).toBe(0);
      const newPid = pidOf(damnit(["listener", "status", "-C", dir]).stdout);
      expect(newPid).not.toBe(pid);
      await until(`old listener ${pid} gone`, () => !existsSync(`/proc/${pid}`) || /\) Z /.test(readFileSync(`/proc/${pid}/stat`, "utf8")));
      // It stopped cleanly on SIGTERM.
      expect(readFileSync(join(dir, "damnit.log"), "utf8")).toMatch(/Stopping on SIGTERM/);

      const stopped = damnit(["listener", "stop", "-C", dir]);
      expect(stopped.status).toBe(3);
      expect(stopped.stdout).toMatch(/STOPPED/);
      const restartedByListen = damnit(["listen", "--daemonize", dir]);
      expect(restartedByListen.stdout).toMatch(/Started the listener \(pid \d+\)/);
      expect(damnit(["listener", "status", "-C", dir]).status).toBe(0);
    } finally {
      const shutdown = damnit(["listener", "shutdown", "-C", dir]);
      expect(shutdown.status, shutdown.stderr).toBe(0);
    }
    expect(damnit(["listener", "status", "-C", dir]).status).toBe(4);
  }, 120_000);

  it("status without a supervisord.conf says how to start the listener", () => {
    const dir = tempDir();
    const status = damnit(["listener", "status", "-C", dir]);
    expect(status.status).toBe(1);
    expect(status.stderr).toMatch(/has no supervisord.conf: start the listener with 'damnit listen --daemonize/);
  });
});
