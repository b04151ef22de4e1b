/**
 * `damnit listener add|rm|databases|config|requests` on a real listener.sqlite (spec §6), as DAMNIT's test_listen
 * checks; commands that only read never create one.
 */
import { existsSync, mkdirSync, readdirSync } from "node:fs";
import { join } from "node:path";
import Database from "better-sqlite3";
import { describe, expect, it } from "vitest";
import { damnit, expectOneLineError } from "./helpers/cli.js";
import { tempDir } from "./helpers/tmp.js";

describe("listener registry commands", () => {
  it("adds official and unofficial databases, lists them by proposal, removes them", () => {
    const tmp = tempDir();
    const root = join(tmp, "exp");
    const official = join(root, "SPB", "202601", "p001234", "usr", "Shared", "amore");
    mkdirSync(official, { recursive: true });
    const dir = join(tmp, "listener");
    const run = (...args: string[]) => damnit(["listener", ...args, "-C", dir]);
    expect(run("config", "data_root", root).status).toBe(0);

    expect(run("add", "1234").stdout.trim()).toBe(`Added proposal 1234 at ${official}`);
    const other = join(tmp, "mine");
    expect(run("add", "1234", other).stdout.trim()).toBe(`Added proposal 1234 at ${other}`);
    expect(run("add", "77", join(tmp, "x")).status).toBe(0);
    expect(run("databases").stdout).toBe(`p77: ${join(tmp, "x")} (unofficial)\np1234:\n    ${official}\n    ${other} (unofficial)\n`);
    // A directory is registered once; the official flag is what DAMNIT's tools read.
    expect(expectOneLineError(run("add", "1234", other))).toMatch(/is already registered \(for proposal 1234\)/);
    const sqlite = new Database(join(dir, "listener.sqlite"), { readonly: true });
    const rows = sqlite.prepare("SELECT proposal, db_dir, official FROM proposal_databases ORDER BY db_dir").all();
    sqlite.close();
    expect(rows).toEqual([
      { proposal: 1234, db_dir: official, official: 1 },
      { proposal: 1234, db_dir: other, official: 0 },
      { proposal: 77, db_dir: join(tmp, "x"), official: 0 },
    ]);

    expect(run("rm", other).stdout.trim()).toBe(`Removed database at ${other}`);
    expect(expectOneLineError(run("rm", other))).toMatch(/is not registered/);
    expect(run("databases").stdout).toBe(`p77: ${join(tmp, "x")} (unofficial)\np1234: ${official}\n`);
    expect(expectOneLineError(run("add", "4321"))).toMatch(/proposal 4321 not found under the data root/);
  });

  it("config shows the defaults, sets, reads and deletes settings, and refuses bad values", () => {
    const dir = join(tempDir(), "listener");
    const run = (...args: string[]) => damnit(["listener", ...args, "-C", dir]);
    expect(run("config").stdout).toBe("allow_local_processing=0\nstatic_mode=1\n");
    expect(run("config", "static-mode", "0").status).toBe(0);
    expect(run("config", "static_mode").stdout.trim()).toBe("0");
    expect(run("config", "local_concurrency", "3", "--num").status).toBe(0);
    expect(run("config", "kafka-brokers", "b1:9091,b2:9091").status).toBe(0);
    expect(run("config").stdout).toBe("allow_local_processing=0\nkafka_brokers='b1:9091,b2:9091'\nlocal_concurrency=3\nstatic_mode=0\n");
    expect(run("config", "--defaults").stdout).toMatch(/^sandbox_args='' \(default\)\s+command \(shell words\) wrapping user code/m);
    expect(expectOneLineError(run("config", "local_concurrency", "many", "--num"))).toBe("damnit: 'many' is not a number");
    expect(expectOneLineError(run("config", "nothing_here"))).toMatch(/key nothing_here not found/);
    expect(run("config", "-d", "kafka_brokers").status).toBe(0);
    expect(expectOneLineError(run("config", "-d", "kafka_brokers"))).toMatch(/key kafka_brokers not found/);
    expect(expectOneLineError(run("config", "-d"))).toMatch(/no key specified to delete/);
  });

  it("commands that only read create no listener.sqlite: they say there is none, or show the defaults", () => {
    const parent = tempDir();
    const dir = join(parent, "not-a-listener");
    const run = (...args: string[]) => damnit(["listener", ...args, "-C", dir]);
    for (const args of [["databases"], ["requests"], ["config", "-d", "static_mode"], ["rm", join(parent, "db")]]) {
      expect(expectOneLineError(run(...args)), args.join(" ")).toMatch(/has no listener\.sqlite/);
    }
    expect(run("config", "--defaults").stdout).toMatch(/^static_mode=1 \(default\)\s+1: process registered databases only/m);
    expect(run("config").stdout).toBe("allow_local_processing=0\nstatic_mode=1\n");
    expect(run("config", "static_mode").stdout).toBe("1\n");
    expect(expectOneLineError(run("config", "kafka_brokers"))).toMatch(/key kafka_brokers not found/);
    expect(existsSync(dir)).toBe(false);
    // The same in a directory that exists: still nothing created in it.
    mkdirSync(dir);
    expect(run("databases").status).toBe(1);
    expect(run("config", "--defaults").status).toBe(0);
    expect(readdirSync(dir)).toEqual([]);
  });
});
