/**
 * Issue 19's attacks, repeated as a second local user made here (useradd; removed after; skipped when not root),
 * with the sharing that must keep working: the listener directory's files (listener.sqlite, supervisord.conf with
 * its credentials, damnit.log) are the owner's alone, or readable by the directory's group; supervisord.conf carries
 * none of the operator's secrets; a database's `damnit_command` does not decide what the listener's jobs run;
 * planted symlinks in process_logs/ are refused; array-job task files cannot be changed by anyone else.
 */
import { spawnSync } from "node:child_process";
import { chmodSync, chownSync, existsSync, lstatSync, mkdirSync, readFileSync, readdirSync, statSync, writeFileSync } from "node:fs";
import { randomBytes } from "node:crypto";
import { join } from "node:path";
import { pino } from "pino";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { isDamnitError } from "../src/core/errors.js";
import { RunDatabase } from "../src/db/index.js";
import { openRunLog } from "../src/extract/run-log.js";
import { ensureExtractedDataDir, runOutputFile } from "../src/extract/store.js";
import { readRunOutput, writeRunOutput } from "../src/extract/h5-output.js";
import type { VariableOutput } from "../src/core/variable-output.js";
import { damnitCommand, type JobRequest } from "../src/jobs/request.js";
import { JOB_SCRIPT, jobArguments, submitArray, submitJob, type SubmitOptions, type SubmittedJob } from "../src/jobs/sbatch.js";
import { slurmSettings } from "../src/jobs/slurm-settings.js";
import { dispatchRun, type Submitter } from "../src/listener/dispatch.js";
import { LocalQueue } from "../src/listener/local-queue.js";
import { ListenerStore } from "../src/listener/store/index.js";
import type { Publisher } from "../src/messaging/publisher.js";
import { processLogFile, touchProcessLog } from "../src/process-logs.js";
import { ListenerProcess, demoDatabase, listenerDir } from "./helpers/listener.js";
import { DAMNIT_BIN } from "./helpers/paths.js";
import { scancel, slurmAvailable, waitForJob } from "./helpers/slurm.js";
import { tempDir } from "./helpers/tmp.js";

const isRoot = process.getuid?.() === 0;
const haveSupervisord = spawnSync("supervisord", ["--version"], { timeout: 10_000 }).status === 0;
const suffix = randomBytes(3).toString("hex");
const USER = `dmsec${suffix}`;
const GROUP = `dmgrp${suffix}`;
let uid = -1;
let gid = -1;
let colleagues = -1;

interface Result {
  status: number | null;
  stdout: string;
  stderr: string;
}

/** Run `command args` as the second user; `inGroup`: with the colleagues' group as a supplementary group. */
function asOther(command: string, args: string[], opts: { inGroup?: boolean; cwd?: string; env?: Record<string, string> } = {}): Result {
  const groups = opts.inGroup ? [`--groups=${colleagues}`] : ["--clear-groups"];
  const result = spawnSync("setpriv", [`--reuid=${uid}`, `--regid=${gid}`, ...groups, command, ...args], {
    cwd: opts.cwd,
    encoding: "utf8",
    timeout: 60_000,
    env: { ...process.env, HOME: "/tmp", DAMNIT_LOG_FORMAT: "json", ...opts.env },
  });
  return { status: result.status, stdout: result.stdout, stderr: result.stderr };
}

/** `damnit args` as the second user. */
function damnitAsOther(args: string[], opts: { inGroup?: boolean; cwd?: string } = {}): Result {
  return asOther(process.execPath, [DAMNIT_BIN, ...args], opts);
}

/** Node code as the second user: exit 0 when it did what it tried. */
function nodeAsOther(code: string, opts: { inGroup?: boolean } = {}): Result {
  return asOther(process.execPath, ["-e", code], opts);
}

function damnitAsOwner(args: string[], env: Record<string, string> = {}): Result {
  const result = spawnSync(process.execPath, [DAMNIT_BIN, ...args], { encoding: "utf8", timeout: 60_000, env: { ...process.env, DAMNIT_LOG_FORMAT: "json", ...env } });
  return { status: result.status, stdout: result.stdout, stderr: result.stderr };
}

/** A temporary directory the second user can reach (tempDir is 0700). */
function reachableDir(): string {
  const dir = tempDir("damnit-sec-");
  chmodSync(dir, 0o755);
  return dir;
}

const mode = (path: string): number => statSync(path).mode & 0o7777;

const silent = pino({ level: "silent" });
const nullPublisher: Publisher = { send: async () => {}, close: async () => {} };

beforeAll(() => {
  if (!isRoot) return;
  const run = (cmd: string, args: string[]) => {
    const r = spawnSync(cmd, args, { encoding: "utf8", timeout: 30_000 });
    if (r.status !== 0) throw new Error(`${cmd} ${args.join(" ")}: ${r.stderr}`);
    return r.stdout.trim();
  };
  run("groupadd", [GROUP]);
  run("useradd", ["-M", "-N", "-g", GROUP, "-s", "/usr/sbin/nologin", USER]);
  // Its primary group is its own private one in practice; here: a separate group for colleagues.
  run("groupadd", [`${GROUP}c`]);
  uid = Number(run("id", ["-u", USER]));
  gid = Number(run("id", ["-g", USER]));
  colleagues = Number(run("getent", ["group", `${GROUP}c`]).split(":")[2]);
  const probe = nodeAsOther(`require("fs").accessSync(${JSON.stringify(DAMNIT_BIN)})`);
  if (probe.status !== 0) throw new Error(`the second user cannot reach ${DAMNIT_BIN}: ${probe.stderr}`);
});

afterAll(() => {
  if (!isRoot) return;
  spawnSync("userdel", [USER], { timeout: 30_000 });
  spawnSync("groupdel", [GROUP], { timeout: 30_000 });
  spawnSync("groupdel", [`${GROUP}c`], { timeout: 30_000 });
});

describe.skipIf(!isRoot)(`as a second local user${isRoot ? "" : " (skipped: needs root to useradd)"}`, () => {
  describe("the listener directory", () => {
    it("listener.sqlite and damnit.log are 0600: another user cannot set sandbox_args; a looser store is tightened", () => {
      const listener = join(reachableDir(), "listener");
      mkdirSync(listener, { mode: 0o755 });
      chmodSync(listener, 0o755);
      ListenerStore.open(listener).close();
      const store = join(listener, "listener.sqlite");
      expect(mode(store)).toBe(0o600);

      const attack = damnitAsOther(["listener", "config", "sandbox_args", "/tmp/evil-wrapper", "-C", listener]);
      expect(attack.status).not.toBe(0);
      const direct = nodeAsOther(`require("fs").openSync(${JSON.stringify(store)}, "r+")`);
      expect(direct.stderr).toMatch(/EACCES/);
      const settings = ListenerStore.open(listener);
      try {
        expect(settings.settings.get("sandbox_args")).toBe("");
      } finally {
        settings.close();
      }

      // An older listener's 0666 store is brought to 0600 by the owner's next open.
      chmodSync(store, 0o666);
      ListenerStore.open(listener).close();
      expect(mode(store)).toBe(0o600);

      // damnit.log (the listener's own log) too: written by a short foreground listener with no broker.
      writeFileSync(join(listener, "damnit.log"), "");
      chmodSync(join(listener, "damnit.log"), 0o666);
      spawnSync(process.execPath, [DAMNIT_BIN, "listen", listener], { timeout: 8_000, killSignal: "SIGTERM", env: { ...process.env, DAMNIT_KAFKA_BROKERS: "none" } });
      expect(readFileSync(join(listener, "damnit.log"), "utf8")).not.toBe("");
      expect(mode(join(listener, "damnit.log"))).toBe(0o600);
    }, 60_000);

    it("with a colleagues' group on the directory: the store is 0640 to it, readable by a member but not writable", () => {
      const listener = join(reachableDir(), "listener");
      mkdirSync(listener);
      chownSync(listener, 0, colleagues);
      chmodSync(listener, 0o750);
      ListenerStore.open(listener).close();
      const store = join(listener, "listener.sqlite");
      expect(mode(store)).toBe(0o640);
      expect(statSync(store).gid).toBe(colleagues);
      expect(nodeAsOther(`require("fs").readFileSync(${JSON.stringify(store)})`, { inGroup: true }).status).toBe(0);
      expect(nodeAsOther(`require("fs").openSync(${JSON.stringify(store)}, "r+")`, { inGroup: true }).stderr).toMatch(/EACCES/);
      expect(damnitAsOther(["listener", "config", "static_mode", "0", "-C", listener], { inGroup: true }).status).not.toBe(0);
      // Outside the group: not even readable (the directory is 0750).
      expect(nodeAsOther(`require("fs").readFileSync(${JSON.stringify(store)})`).stderr).toMatch(/EACCES/);
      const reopened = ListenerStore.open(listener);
      try {
        expect(reopened.settings.get("static_mode")).toBe(true);
      } finally {
        reopened.close();
      }
    }, 60_000);

    it.skipIf(!haveSupervisord)("supervisord.conf: no secrets of the operator's shell; 0600, or 0640 so that the group can restart", async () => {
      const listener = join(reachableDir(), "listener");
      mkdirSync(listener);
      chmodSync(listener, 0o755);
      const conf = join(listener, "supervisord.conf");
      try {
        const started = damnitAsOwner(["listen", "--daemonize", listener], { MY_TOKEN: "s3cret-token-value", DAMNIT_KAFKA_BROKERS: "none" });
        expect(started.status, started.stderr).toBe(0);
        const text = readFileSync(conf, "utf8");
        expect(text).not.toContain("s3cret-token-value");
        expect(text).not.toContain("MY_TOKEN");
        expect(text).toMatch(/environment=.*PATH=/);
        expect(text).toContain("DAMNIT_KAFKA_BROKERS=");
        expect(mode(conf)).toBe(0o600);
        // The other user can neither read the credentials nor use them to restart or stop the listener.
        expect(nodeAsOther(`require("fs").readFileSync(${JSON.stringify(conf)})`).stderr).toMatch(/EACCES/);
        expect(damnitAsOther(["listener", "restart", "-C", listener]).status).not.toBe(0);
        expect(damnitAsOther(["listener", "stop", "-C", listener]).status).not.toBe(0);
        const status = damnitAsOwner(["listener", "status", "-C", listener]);
        expect(status.stdout).toMatch(/RUNNING/);
        const pid = Number(/pid (\d+)/.exec(status.stdout)?.[1]);
        for (const name of readdirSync(listener).filter((n) => !n.startsWith("."))) {
          const path = join(listener, name);
          if (statSync(path).isFile()) expect([name, mode(path) & 0o077]).toEqual([name, 0]);
        }

        // Colleagues: the operator gives the directory a group; the listener's next start writes the conf 0640.
        expect(damnitAsOwner(["listener", "shutdown", "-C", listener]).status).toBe(0);
        chownSync(listener, 0, colleagues);
        chmodSync(listener, 0o750);
        const again = damnitAsOwner(["listen", "--daemonize", listener], { DAMNIT_KAFKA_BROKERS: "none" });
        expect(again.status, again.stderr).toBe(0);
        expect(mode(conf)).toBe(0o640);
        expect(statSync(conf).gid).toBe(colleagues);
        const before = Number(/pid (\d+)/.exec(damnitAsOwner(["listener", "status", "-C", listener]).stdout)?.[1]);
        expect(before).not.toBe(pid);
        const colleagueStatus = damnitAsOther(["listener", "status", "-C", listener], { inGroup: true });
        expect(colleagueStatus.status, colleagueStatus.stderr).toBe(0);
        expect(colleagueStatus.stdout).toMatch(/RUNNING/);
        // The listener's own report too: the store is read without being written.
        expect(colleagueStatus.stdout).toMatch(/^Quarantined messages: 0$/m);
        expect(colleagueStatus.stdout).not.toMatch(/listener store:/);
        const restart = damnitAsOther(["listener", "restart", "-C", listener], { inGroup: true });
        expect(restart.status, restart.stderr + restart.stdout).toBe(0);
        const after = damnitAsOwner(["listener", "status", "-C", listener]);
        expect(after.stdout).toMatch(/RUNNING/);
        expect(Number(/pid (\d+)/.exec(after.stdout)?.[1])).not.toBe(before);
        // Still: a colleague cannot write the conf or the store.
        expect(nodeAsOther(`require("fs").openSync(${JSON.stringify(conf)}, "r+")`, { inGroup: true }).stderr).toMatch(/EACCES/);
        expect(nodeAsOther(`require("fs").openSync(${JSON.stringify(join(listener, "listener.sqlite"))}, "r+")`, { inGroup: true }).stderr).toMatch(/EACCES/);
      } finally {
        damnitAsOwner(["listener", "shutdown", "-C", listener]);
      }
    }, 180_000);
  });

  describe("a proposal member's metameta", () => {
    /** A database the team shares (runs.sqlite 0666 in a 0777 directory), a listener for it and a marker script. */
    async function sharedSetup() {
      const tmp = reachableDir();
      const dbDir = join(tmp, "db");
      const db = await RunDatabase.open(dbDir, { create: true, initialSettings: { proposal: 1234 } });
      // small jobs, for the test cluster
      for (const [key, value] of [["noncluster_cpus", "1"], ["noncluster_mem", "1G"], ["slurm_time", "00:10:00"]] as const) db.setSetting(key, value);
      db.close();
      const marker = join(tmp, "attacker-ran");
      const evil = join(tmp, "evil.sh");
      writeFileSync(evil, `#!/bin/sh\ntouch ${marker}\n`, { mode: 0o755 });
      chmodSync(evil, 0o755);
      // The member (the second user) sets damnit_command through the shared database, as DAMNIT allows.
      const set = damnitAsOther(["db-config", "--any", "damnit_command", evil], { cwd: dbDir });
      expect(set.status, set.stderr).toBe(0);
      // ... and can still comment (the sharing that must keep working).
      expect(damnitAsOther(["db-config", "--any", "member_note", "hello"], { cwd: dbDir }).status).toBe(0);
      const store = ListenerStore.open(join(tmp, "listener"));
      store.databases.add(1234, dbDir, false);
      const dataRoot = join(tmp, "exp");
      mkdirSync(dataRoot);
      return { tmp, dbDir, marker, evil, store, dataRoot };
    }

    it("damnit_command in runs.sqlite does not decide what the listener's jobs run; the listener's own setting does", async () => {
      const { dbDir, evil, store, dataRoot } = await sharedSetup();
      const submitted: string[][] = [];
      const capture: Submitter = {
        async submit(dir: string, request: JobRequest, opts: SubmitOptions): Promise<SubmittedJob> {
          submitted.push(jobArguments(dir, request, opts, processLogFile(dir, request.proposal, request.run)));
          return { jobId: String(100 + submitted.length), cluster: "" };
        },
        activeJobs: async () => new Set(),
      };
      const local = new LocalQueue(store, nullPublisher, silent, 1);
      try {
        const opts = { store, submitter: capture, local, publisher: nullPublisher, logger: silent, dataRoot, jobEnv: {}, localWithoutSlurm: false };
        await dispatchRun({ proposal: 1234, run: 1, kind: "raw", addedAt: 1_700_000_000, source: "test" }, opts);
        expect(submitted).toHaveLength(1);
        const args = submitted[0]!;
        expect(args).not.toContain(evil);
        const script = args.indexOf(JOB_SCRIPT);
        expect(args.slice(script + 1, script + 4)).toEqual([...damnitCommand(), "run-logged"]);
        const command = args.indexOf("--", script);
        expect(args.slice(command + 1, command + 4)).toEqual([...damnitCommand(), "extract"]);

        // The listener's owner may choose another damnit: that is taken.
        store.settings.set("damnit_command", "/opt/damnit/bin/damnit --flag");
        await dispatchRun({ proposal: 1234, run: 2, kind: "raw", addedAt: 1_700_000_000, source: "test" }, opts);
        expect(submitted).toHaveLength(2);
        const second = submitted[1]!;
        expect(second.slice(second.indexOf(JOB_SCRIPT) + 1, second.indexOf(JOB_SCRIPT) + 4)).toEqual(["/opt/damnit/bin/damnit", "--flag", "run-logged"]);
        const secondCommand = second.indexOf("--", second.indexOf(JOB_SCRIPT));
        expect(second.slice(secondCommand + 1, secondCommand + 4)).toEqual(["/opt/damnit/bin/damnit", "--flag", "extract"]);
        // reprocess and follow-ups read the database's settings for resources only.
        const db = await RunDatabase.open(dbDir);
        try {
          expect(slurmSettings(db).damnitCommand).toBe("");
        } finally {
          db.close();
        }
      } finally {
        local.close();
        store.close();
      }
    }, 60_000);

    it.skipIf(!slurmAvailable)("and the real listener's Slurm job does not run the member's script, and processes the run", async () => {
      const tmp = reachableDir();
      const db = demoDatabase(tmp, 1);
      const marker = join(tmp, "attacker-ran");
      const evil = join(tmp, "evil.sh");
      writeFileSync(evil, `#!/bin/sh\ntouch ${marker}\n`, { mode: 0o755 });
      chmodSync(evil, 0o755);
      const set = damnitAsOther(["db-config", "--any", "damnit_command", evil], { cwd: db });
      expect(set.status, set.stderr).toBe(0);
      const dir = listenerDir(tmp, 1234, db, { watch_interval_seconds: "0.3", watch_settle_seconds: "0.5" });
      const listener = new ListenerProcess(dir, { DAMNIT_KAFKA_BROKERS: undefined });
      const jobs: string[] = [];
      try {
        await listener.waitFor(/watching the raw\/ and proc\/ directories/);
        const synth = damnitAsOwner(["synth", join(db, "data"), "--proposal", "1234", "--runs", "1", "--first-run", "2"]);
        expect(synth.status, synth.stderr).toBe(0);
        const line = await listener.waitFor(/Submitted Slurm job \d+ for p1234 r2 \(raw\)/, 60_000);
        jobs.push(/Submitted Slurm job (\d+)/.exec(line.msg)![1]!);
        const result = await waitForJob(jobs[0]!, 150_000);
        expect(result.state, readFileSync(join(db, "process_logs", "r2-p1234.out"), "utf8")).toBe("COMPLETED");
        expect(existsSync(marker)).toBe(false);
        expect(readFileSync(join(db, "process_logs", "r2-p1234.out"), "utf8")).not.toMatch(/evil/);
      } finally {
        await listener.stop();
        await scancel(jobs);
      }
    }, 240_000);
  });

  describe("process_logs/", () => {
    it("a planted symlink is refused: the target is neither appended to nor chmod-ed; the team can still append", async () => {
      const tmp = reachableDir();
      const dbDir = join(tmp, "db");
      const db = await RunDatabase.open(dbDir, { create: true, initialSettings: { proposal: 1234 } });
      db.close();
      const secret = join(tmp, "root-only");
      writeFileSync(secret, "secret\n", { mode: 0o600 });
      chmodSync(secret, 0o600);
      const shared = join(dbDir, "process_logs");
      const log3 = processLogFile(dbDir, 1234, 3);
      expect(mode(shared)).toBe(0o1777);
      const plant = nodeAsOther(`require("fs").symlinkSync(${JSON.stringify(secret)}, ${JSON.stringify(log3)})`);
      expect(plant.status, plant.stderr).toBe(0);

      const refused = (fn: () => unknown) => {
        try {
          fn();
        } catch (err) {
          expect(isDamnitError(err, "UNSAFE_FILE"), String(err)).toBe(true);
          expect((err as Error).message).toMatch(/symbolic link/);
          return;
        }
        throw new Error("not refused");
      };
      refused(() => touchProcessLog(dbDir, 1234, 3));
      refused(() => openRunLog(log3));
      // A job's submission refuses it too, before sbatch is asked (so Slurm's --output never opens it).
      const request: JobRequest = { proposal: 1234, run: 3, data: "raw", processingId: "x", updateVars: true };
      const db2 = await RunDatabase.open(dbDir);
      const settings = slurmSettings(db2);
      db2.close();
      await expect(submitJob(dbDir, request, { settings, env: { PATH: "/nonexistent" } })).rejects.toMatchObject({ code: "UNSAFE_FILE" });
      // The run task (array jobs) as well.
      const taskFile = join(tmp, "tasks.json");
      writeFileSync(taskFile, JSON.stringify({ tasks: [{ argv: ["true"], log: log3 }] }));
      // The job itself (run-task for array tasks, run-logged for single jobs) runs, its output in a fresh file of
      // its own beside the planted one.
      const freshLogs = () => readdirSync(shared).filter((n) => /^r3-p1234\.[0-9a-f]{8}\.out$/.test(n));
      const task = damnitAsOwner(["run-task", taskFile, "0"]);
      expect(task.status, task.stderr).toBe(0);
      expect(task.stderr).toMatch(/symbolic link/);
      expect(freshLogs()).toHaveLength(1);

      // The window Slurm's --output left open: the member makes the log a regular file of theirs before the
      // submission (accepted: it is the team's log), then swaps it for a symlink before the job starts. The job
      // opens it itself and refuses the link.
      const log5 = processLogFile(dbDir, 1234, 5);
      expect(nodeAsOther(`require("fs").writeFileSync(${JSON.stringify(log5)}, "", { mode: 0o666 })`).status).toBe(0);
      expect(touchProcessLog(dbDir, 1234, 5)).toBe(log5);
      const swap = nodeAsOther(`const fs = require("fs"); fs.unlinkSync(${JSON.stringify(log5)}); fs.symlinkSync(${JSON.stringify(secret)}, ${JSON.stringify(log5)})`);
      expect(swap.status, swap.stderr).toBe(0);
      const logged = damnitAsOwner(["run-logged", log5, "--", "/bin/echo", "job output"]);
      expect(logged.status, logged.stderr).toBe(0);
      expect(logged.stderr).toMatch(/symbolic link/);
      const fresh5 = readdirSync(shared).filter((n) => /^r5-p1234\.[0-9a-f]{8}\.out$/.test(n));
      expect(fresh5).toHaveLength(1);
      expect(readFileSync(join(shared, fresh5[0]!), "utf8")).toMatch(/job output/);

      expect(readFileSync(secret, "utf8")).toBe("secret\n");
      expect(mode(secret)).toBe(0o600);

      // Sharing: a log the service created is 0666; the member's jobs append to it, but cannot swap it for a link.
      const log4 = touchProcessLog(dbDir, 1234, 4);
      expect(mode(log4)).toBe(0o666);
      expect(nodeAsOther(`require("fs").appendFileSync(${JSON.stringify(log4)}, "member\\n")`).status).toBe(0);
      expect(readFileSync(log4, "utf8")).toBe("member\n");
      expect(nodeAsOther(`require("fs").unlinkSync(${JSON.stringify(log4)})`).stderr).toMatch(/EPERM|EACCES/);
      const log = openRunLog(log4);
      log.raw("service\n");
      log.close();
      expect(readFileSync(log4, "utf8")).toBe("member\nservice\n");
    }, 60_000);

    it("a run file in extracted_data/ replaced by a symlink: its target is neither read into the team's file nor chmod-ed", async () => {
      const tmp = reachableDir();
      const dbDir = join(tmp, "db");
      const dir = ensureExtractedDataDir(dbDir);
      // A run file of the service's elsewhere (another proposal's, private), with a variable the member must not see.
      const privateFile = join(tmp, "private.h5");
      const value = (name: string, x: number): VariableOutput => ({ name, data: { kind: "ndarray", dtype: "float64", shape: [], data: Float64Array.of(x) }, attrs: {} });
      await writeRunOutput(privateFile, [value("secret_value", 42)]);
      chmodSync(privateFile, 0o600);
      const before = readFileSync(privateFile);
      const runFile = runOutputFile(dbDir, 1234, 3);
      const plant = nodeAsOther(`require("fs").symlinkSync(${JSON.stringify(privateFile)}, ${JSON.stringify(runFile)})`);
      expect(plant.status, plant.stderr).toBe(0);

      await writeRunOutput(runFile, [value("energy", 9.3)]);
      expect(lstatSync(runFile).isSymbolicLink()).toBe(false);
      expect([...(await readRunOutput(runFile)).keys()]).toEqual(["energy"]);
      expect(mode(privateFile)).toBe(0o600);
      expect(readFileSync(privateFile).equals(before)).toBe(true);
      expect(mode(runFile)).toBe(0o666);
      expect(readdirSync(dir).filter((n) => n.includes("writing"))).toEqual([]);
    }, 60_000);

    it("process_logs/, extracted_data/ or .tmp/ replaced by a symlink to a directory elsewhere: refused, the target untouched", async () => {
      const tmp = reachableDir();
      const dbDir = join(tmp, "db");
      const db = await RunDatabase.open(dbDir, { create: true, initialSettings: { proposal: 1234 } });
      const settings = slurmSettings(db);
      db.close();
      const elsewhere = join(tmp, "root-only-dir");
      mkdirSync(elsewhere, { mode: 0o700 });
      chmodSync(elsewhere, 0o700);
      for (const name of ["process_logs", "extracted_data", ".tmp"]) {
        const plant = nodeAsOther(`require("fs").symlinkSync(${JSON.stringify(elsewhere)}, ${JSON.stringify(join(dbDir, name))})`);
        expect(plant.status, plant.stderr).toBe(0);
      }
      expect(() => touchProcessLog(dbDir, 1234, 1)).toThrow(/process_logs: it is a symbolic link/);
      expect(() => ensureExtractedDataDir(dbDir)).toThrow(/extracted_data: it is a symbolic link/);
      const reqs: JobRequest[] = [{ proposal: 1234, run: 1, data: "raw", processingId: "p1", updateVars: true }];
      await expect(submitArray(dbDir, reqs, { settings, env: { PATH: "/nonexistent" } })).rejects.toThrow(/\.tmp: it is a symbolic link/);
      expect(mode(elsewhere)).toBe(0o700);
      expect(readdirSync(elsewhere)).toEqual([]);
    }, 60_000);
  });

  describe("array-job task files", () => {
    it("are 0600 in a fresh 0700 directory of the submitting user: another user cannot change or replace them", async () => {
      const tmp = reachableDir();
      const dbDir = join(tmp, "db");
      const db = await RunDatabase.open(dbDir, { create: true, initialSettings: { proposal: 1234 } });
      const settings = slurmSettings(db);
      db.close();
      // A fake sbatch: records that it was asked and prints a job id (the real one would start the tasks later).
      const bin = join(tmp, "bin");
      mkdirSync(bin);
      writeFileSync(join(bin, "sbatch"), "#!/bin/sh\necho 4242\n", { mode: 0o755 });
      chmodSync(join(bin, "sbatch"), 0o755);
      const reqs: JobRequest[] = [1, 2].map((run) => ({ proposal: 1234, run, data: "raw", processingId: `p${run}`, updateVars: true }));
      const jobs = await submitArray(dbDir, reqs, { settings, env: { PATH: `${bin}:/usr/bin:/bin` } });
      expect(jobs.map((j) => j.jobId)).toEqual(["4242_0", "4242_1"]);

      const shared = join(dbDir, ".tmp");
      expect(mode(shared)).toBe(0o1777);
      const dirs = readdirSync(shared);
      expect(dirs).toHaveLength(1);
      const own = join(shared, dirs[0]!);
      expect(dirs[0]).toMatch(/^root-[0-9a-f]{16}$/);
      expect(mode(own)).toBe(0o700);
      const files = readdirSync(own);
      expect(files).toHaveLength(1);
      const file = join(own, files[0]!);
      expect(mode(file)).toBe(0o600);
      const original = readFileSync(file, "utf8");
      expect(JSON.parse(original).tasks).toHaveLength(2);

      // The attacks: rewrite the file, add one next to it, move the directory away and put another in its place.
      expect(nodeAsOther(`require("fs").writeFileSync(${JSON.stringify(file)}, "{}")`).stderr).toMatch(/EACCES/);
      expect(nodeAsOther(`require("fs").writeFileSync(${JSON.stringify(join(own, "x"))}, "{}")`).stderr).toMatch(/EACCES/);
      expect(nodeAsOther(`require("fs").renameSync(${JSON.stringify(own)}, ${JSON.stringify(`${own}.old`)})`).stderr).toMatch(/EPERM|EACCES/);
      expect(readFileSync(file, "utf8")).toBe(original);
      // The submitting user's task still runs from it.
      const task = damnitAsOwner(["run-task", file, "5"]);
      expect(task.stderr).toMatch(/task 5 is not in/);
    }, 60_000);

    it("in a .tmp another user owns (who may rename what is in it), a task file swapped in for ours is refused", async () => {
      const tmp = reachableDir();
      const dbDir = join(tmp, "db");
      const db = await RunDatabase.open(dbDir, { create: true, initialSettings: { proposal: 1234 } });
      const settings = slurmSettings(db);
      db.close();
      const shared = join(dbDir, ".tmp");
      expect(nodeAsOther(`require("fs").mkdirSync(${JSON.stringify(shared)}); require("fs").chmodSync(${JSON.stringify(shared)}, 0o777)`).status).toBe(0);
      const bin = join(tmp, "bin");
      mkdirSync(bin);
      writeFileSync(join(bin, "sbatch"), "#!/bin/sh\necho 4343\n", { mode: 0o755 });
      chmodSync(join(bin, "sbatch"), 0o755);
      await submitArray(dbDir, [{ proposal: 1234, run: 1, data: "raw", processingId: "p1", updateVars: true }], { settings, env: { PATH: `${bin}:/usr/bin:/bin` } });
      const [name] = readdirSync(shared);
      const own = join(shared, name!);
      const file = join(own, readdirSync(own)[0]!);
      const marker = join(tmp, "attacker-ran");
      // The attacker moves our directory away and puts theirs, with a task file of the same name, in its place.
      const swap = nodeAsOther(
        `const fs = require("fs"); fs.renameSync(${JSON.stringify(own)}, ${JSON.stringify(`${own}.moved`)}); fs.mkdirSync(${JSON.stringify(own)}, { mode: 0o755 });` +
          `fs.writeFileSync(${JSON.stringify(file)}, JSON.stringify({ tasks: [{ argv: ["touch", ${JSON.stringify(marker)}], log: ${JSON.stringify(join(tmp, "log"))} }] }), { mode: 0o644 })`,
      );
      expect(swap.status, swap.stderr).toBe(0);
      const task = damnitAsOwner(["run-task", file, "0"]);
      expect(task.status).not.toBe(0);
      expect(task.stderr).toMatch(/refusing to read .* belongs to uid \d+, not to us/);
      expect(existsSync(marker)).toBe(false);
    }, 60_000);
  });
});
