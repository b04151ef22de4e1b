/**
 * The settings tables (src/db/defaults.ts, src/listener/settings.ts) are the defaults the code applies: each reader
 * goes through them, a fresh store holds the `stored` ones, bad values are refused by name, and no source file reads
 * a known setting around its table.
 */
import { readdirSync, readFileSync, statSync } from "node:fs";
import { join, relative } from "node:path";
import { totalmem } from "node:os";
import { describe, expect, it } from "vitest";
import { isDamnitError } from "../src/core/errors.js";
import { defaultOf, parseSetting, SettingsReader } from "../src/core/settings.js";
import { METAMETA_DEFAULTS, METAMETA_SETTINGS } from "../src/db/defaults.js";
import { RunDatabase } from "../src/db/index.js";
import { runnerLimits } from "../src/extract/job.js";
import { resourceOptions, slurmSettings } from "../src/jobs/slurm-settings.js";
import { ListenerStore } from "../src/listener/store/index.js";
import { LISTENER_SETTINGS } from "../src/listener/settings.js";
import { damnit, expectOneLineError } from "./helpers/cli.js";
import { REPO_ROOT } from "./helpers/paths.js";
import { tempDir } from "./helpers/tmp.js";

describe("runs.sqlite settings (metameta)", () => {
  it("a new database holds exactly the stored defaults, and readers apply the table's defaults", async () => {
    const db = await RunDatabase.open(tempDir(), { create: true });
    const stored = db.allSettings();
    const storedKeys = Object.entries(METAMETA_SETTINGS).filter(([, spec]) => spec.stored).map(([key]) => key);
    expect(Object.keys(stored).sort()).toEqual(storedKeys.sort());
    expect(stored.concurrent_jobs).toBe(METAMETA_SETTINGS.concurrent_jobs.default);
    expect(stored.data_format_version).toBe(METAMETA_SETTINGS.data_format_version.default);
    expect(String(stored.db_id)).toMatch(/^[0-9a-f]{40}$/);

    const slurm = slurmSettings(db);
    expect(slurm).toEqual({
      time: METAMETA_SETTINGS.slurm_time.default,
      cpus: METAMETA_SETTINGS.noncluster_cpus.default,
      mem: METAMETA_SETTINGS.noncluster_mem.default,
      reservation: "",
      partition: "",
      nonclusterPartition: "",
      nonclusterSlurmCluster: "",
      clusterSlurmCluster: "",
      concurrentJobs: 15,
      damnitCommand: "",
    });
    expect(resourceOptions(slurm, false)).toEqual(["--time", "02:00:00", "--cpus-per-task", "4", "--mem", "25G"]);

    const limits = runnerLimits(db.settings);
    expect(limits.variableTimeout).toBe(3600);
    expect(limits.memoryLimitMb).toBe(Math.floor((totalmem() / 2 ** 20) * 0.75));
    expect(limits.resultLimitBytes).toBe(1024 * 2 ** 20);
    // Without a database (read-context in a bare directory) the same defaults apply.
    expect(runnerLimits(METAMETA_DEFAULTS)).toEqual(limits);
    db.close();
  });

  it("stored values win over defaults, typed by the table", async () => {
    const db = await RunDatabase.open(tempDir(), { create: true });
    db.updateSettings({ variable_timeout: "12.5", concurrent_jobs: 3, slurm_time: " 01:00:00 ", noncluster_mem: "" });
    expect(db.settings.get("variable_timeout")).toBe(12.5);
    expect(db.settings.get("concurrent_jobs")).toBe(3);
    expect(db.settings.get("slurm_time")).toBe("01:00:00");
    expect(db.settings.get("noncluster_mem")).toBe("");
    db.setSetting("runner_memory_limit_mb", "");
    expect(db.settings.get("runner_memory_limit_mb")).toBe(defaultOf(METAMETA_SETTINGS.runner_memory_limit_mb));
    db.close();
  });

  it("refuses a stored value of the wrong kind by name, instead of using something else silently", async () => {
    const db = await RunDatabase.open(tempDir(), { create: true });
    db.setSetting("variable_timeout", "soon");
    let caught: unknown;
    try {
      runnerLimits(db.settings);
    } catch (err) {
      caught = err;
    }
    expect(isDamnitError(caught, "BAD_SETTING")).toBe(true);
    expect((caught as Error).message).toBe(
      `setting variable_timeout="soon" in ${db.path} is not a number (seconds one variable may run before it is stopped (TimeoutError))`,
    );
    db.setSetting("concurrent_jobs", 2.5);
    expect(() => slurmSettings(db)).toThrow(/concurrent_jobs="2.5" in .*runs.sqlite is not a whole number greater than 0/);
    db.close();
  });

  it("db-config checks values and keys against the table", async () => {
    const dir = tempDir();
    (await RunDatabase.open(dir, { create: true })).close();
    expect(expectOneLineError(damnit(["db-config", "variable_timeout", "-5", "-C", dir]))).toMatch(
      /^damnit: setting variable_timeout="-5" is not a number greater than 0/,
    );
    expect(expectOneLineError(damnit(["db-config", "slurm_tme", "01:00:00", "-C", dir]))).toBe(
      "damnit: damnit reads no setting named 'slurm_tme' (did you mean 'slurm_time'?); 'damnit db-config --defaults' lists them, '--any' stores another key as it is",
    );
    expect(damnit(["db-config", "variable-timeout", "60", "-C", dir]).status).toBe(0);
    expect(damnit(["db-config", "gui_colour", "blue", "--any", "-C", dir]).status).toBe(0);
    const db = await RunDatabase.open(dir);
    expect(db.getSetting("variable_timeout")).toBe(60); // a numeric setting is stored as a number
    expect(db.getSetting("gui_colour")).toBe("blue");
    expect(db.getSetting("slurm_tme")).toBeUndefined();
    db.close();
    const defaults = damnit(["db-config", "--defaults", "-C", dir]).stdout;
    expect(defaults).toMatch(/^variable_timeout=60\s+seconds one variable may run/m);
    expect(defaults).toMatch(/^runner_memory_limit_mb=\d+ \(3\/4 of the machine's memory\) \(default\)\s+MiB/m);
    expect(defaults.trim().split("\n")).toHaveLength(Object.keys(METAMETA_SETTINGS).length);
  });
});

describe("listener.sqlite settings", () => {
  it("a new store holds the stored defaults; every other key reads as its default", () => {
    const store = ListenerStore.open(tempDir());
    try {
      expect(store.settings.all()).toEqual({ allow_local_processing: 0, static_mode: 1 });
      for (const key of Object.keys(LISTENER_SETTINGS) as Array<keyof typeof LISTENER_SETTINGS>) {
        expect(store.settings.get(key), key).toEqual(defaultOf(LISTENER_SETTINGS[key]));
      }
      expect(store.settings.get("local_concurrency")).toBeGreaterThanOrEqual(1);
      expect(store.settings.get("local_concurrency")).toBeLessThanOrEqual(10);
      store.settings.set("static_mode", 0);
      store.settings.set("watch_settle_seconds", "0");
      expect(store.settings.get("static_mode")).toBe(false);
      expect(store.settings.get("watch_settle_seconds")).toBe(0);
    } finally {
      store.close();
    }
  });
});

describe("the settings mechanism", () => {
  it("parses each kind and refuses what is not of it", () => {
    const flag = { kind: "flag", default: false, stored: false, meaning: "m" } as const;
    expect(["1", "yes", 2].map((v) => parseSetting("f", flag, v))).toEqual([true, true, true]);
    expect(["0", "off", "No", "", 0].map((v) => parseSetting("f", flag, v))).toEqual([false, false, false, false, false]);
    const count = { kind: "positive-integer", default: 1, stored: false, meaning: "m" } as const;
    expect(parseSetting("c", count, 4n)).toBe(4);
    expect(parseSetting("c", count, "")).toBeUndefined();
    expect(parseSetting("c", count, null)).toBeUndefined();
    for (const bad of ["0", "-1", "1.5", "x", "Infinity"]) expect(() => parseSetting("c", count, bad), bad).toThrow(/^setting c=/);
    const warnings: string[] = [];
    const lenient = new SettingsReader({ c: count }, () => "x", { onInvalid: (err) => warnings.push(err.code) });
    expect(lenient.get("c")).toBe(1);
    expect(warnings).toEqual(["BAD_SETTING"]);
  });
});

describe("no reader goes around the tables", () => {
  function sources(dir: string): string[] {
    return readdirSync(dir).flatMap((name) => {
      const path = join(dir, name);
      return statSync(path).isDirectory() ? sources(path) : path.endsWith(".ts") ? [path] : [];
    });
  }

  it("known settings are read through `settings.get`, never by key with getSetting", () => {
    const known = new Set([...Object.keys(METAMETA_SETTINGS), ...Object.keys(LISTENER_SETTINGS)]);
    // The stores' own modules (the raw accessor, migrations, creation) may touch keys directly.
    const allowed = new Set(["src/db/metameta.ts", "src/db/open.ts", "src/db/migrate.ts", "src/legacy/v0-to-v1.ts"]);
    const offenders: string[] = [];
    for (const file of sources(join(REPO_ROOT, "src"))) {
      const rel = relative(REPO_ROOT, file);
      if (allowed.has(rel)) continue;
      for (const m of readFileSync(file, "utf8").matchAll(/getSetting\(\s*(?:[\w.]+,\s*)?"(\w+)"/g)) {
        if (known.has(m[1]!)) offenders.push(`${rel}: ${m[0]}`);
      }
    }
    expect(offenders).toEqual([]);
  });

  it("every setting in the tables is read by the code", () => {
    const text = sources(join(REPO_ROOT, "src"))
      .filter((f) => !f.endsWith("defaults.ts") && !f.endsWith("listener/settings.ts"))
      .map((f) => readFileSync(f, "utf8"))
      .join("\n");
    // Kept for DAMNIT's own tools, or managed by the store itself.
    const notRead = new Set(["context_python", "damnit_python"]);
    const unread = [...Object.keys(METAMETA_SETTINGS), ...Object.keys(LISTENER_SETTINGS)].filter(
      (key) => !notRead.has(key) && !text.includes(`"${key}"`),
    );
    expect(unread).toEqual([]);
  });
});
