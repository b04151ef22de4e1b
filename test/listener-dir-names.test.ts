/**
 * Listener directories with awkward names: a quote, `;`, `#` and spaces work under supervisord (the config quotes
 * them); a name supervisord.conf cannot hold (a line break, both kinds of quotes) is a user error, one line and
 * exit 1, not a crash.
 */
import { spawnSync } from "node:child_process";
import { mkdirSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { damnit, expectOneLineError } from "./helpers/cli.js";
import { tempDir } from "./helpers/tmp.js";

const haveSupervisord = spawnSync("supervisord", ["--version"], { timeout: 10_000 }).status === 0;

describe.skipIf(!haveSupervisord && !process.env.REQUIRE_SUPERVISOR)("listen --daemonize and directory names", () => {
  it("runs in a directory whose name has a quote, ';', '#' and spaces, and prints commands a shell can take", () => {
    const dir = join(tempDir(), `it's odd;a b#c`);
    mkdirSync(dir);
    try {
      const started = damnit(["listen", "--daemonize", dir]);
      expect(started.status, started.stderr).toBe(0);
      expect(started.stdout).toContain(`damnit listener status -C '${dir.replaceAll("'", `'"'"'`)}'`);
      const status = spawnSync("sh", ["-c", `${process.execPath} ${join(process.cwd(), "bin", "damnit.js")} listener status -C '${dir.replaceAll("'", `'"'"'`)}'`], {
        encoding: "utf8",
        timeout: 60_000,
      });
      expect(status.status, status.stderr).toBe(0);
      expect(status.stdout).toMatch(/RUNNING/);
    } finally {
      damnit(["listener", "shutdown", "-C", dir]);
    }
  }, 120_000);

  it("refuses names supervisord.conf cannot hold with one line, exit 1", () => {
    const broken = join(tempDir(), "line\nbreak");
    mkdirSync(broken);
    expect(expectOneLineError(damnit(["listen", "--daemonize", broken]))).toMatch(/contains a line break or NUL, which supervisord.conf cannot hold$/);
    // supervisord's environment= lexer has no escapes: a value cannot hold both kinds of quotes.
    const quoted = join(tempDir(), `it's "odd"`);
    mkdirSync(quoted);
    expect(expectOneLineError(damnit(["listen", "--daemonize", quoted]))).toMatch(/cannot be written to supervisord.conf: it contains both kinds of quotes$/);
  }, 60_000);
});
