/**
 * Exactly one job per request (issue 17 item 8): a request's idempotency key (proposal, run, data kind, context
 * hash) and processing id go into its Slurm job's comment before sbatch runs, so a listener restarted after a kill
 * finds the job its predecessor submitted (squeue) and adopts it instead of submitting a second one. The sbatch
 * child of a killed listener may still be running (it is not killed with its parent): it is waited for first.
 */
import { createHash } from "node:crypto";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { loadExeca } from "../core/lazy-execa.js";
import { CONTEXT_FILE_NAMES } from "../context/load.js";

const CONTEXT_NAMES = [...CONTEXT_FILE_NAMES, "context.py"];

/** The first 16 hex digits of the SHA-256 of the database's context file; "none" without one. */
export function contextHash(dbDir: string): string {
  for (const name of CONTEXT_NAMES) {
    try {
      return createHash("sha256").update(readFileSync(join(dbDir, name))).digest("hex").slice(0, 16);
    } catch {
      // not this name
    }
  }
  return "none";
}

/** `p<P>-r<R>-<kind>-<context hash>`: the same request for the same code gives the same key. */
export function idempotencyKey(proposal: number, run: number, kind: string, hash: string): string {
  return `p${proposal}-r${run}-${kind}-${hash}`;
}

/** The job comment carrying both (no spaces: one word in squeue's output). */
export function jobComment(processingId: string, key: string): string {
  return `damnit:${processingId}:${key}`;
}

/**
 * The id of a job (queued, running, or finished within MinJobAge) on `cluster` whose comment carries this
 * processing id; undefined when there is none (or no Slurm is installed here), null when squeue cannot say.
 */
export async function findJobByProcessingId(processingId: string, jobName: string, cluster = ""): Promise<string | undefined | null> {
  const result = await (await loadExeca())(
    "squeue",
    [...(cluster ? ["--clusters", cluster] : []), "--noheader", "--array", "--states=all", "--format=%i|%k", `--name=${jobName}`],
    { reject: false, timeout: 30_000, stdin: "ignore" },
  ).catch(() => null);
  // No squeue here: no Slurm on this machine, so no sbatch of an earlier listener here can have made a job.
  if (result && result.code === "ENOENT") return undefined;
  if (!result || result.exitCode !== 0) return null;
  for (const line of String(result.stdout).split("\n")) {
    const [id, comment] = line.trim().split("|", 2);
    if (id && comment && comment.startsWith(`damnit:${processingId}:`)) return id;
  }
  return undefined;
}

/** Whether process `pid` is alive and its command line mentions `marker` (so a reused pid is not mistaken). */
export function processRunning(pid: number, marker: string): boolean {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, "utf8").includes(marker);
  } catch {
    return false;
  }
}

/** Wait (bounded by `timeoutMs`) until the sbatch child `pid` of an earlier listener has exited; false if it has not. */
export async function waitForExit(pid: number, marker: string, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (processRunning(pid, marker)) {
    if (Date.now() > deadline) return false;
    await new Promise((r) => setTimeout(r, 100));
  }
  return true;
}

/**
 * Stop an earlier listener's sbatch child that hangs (pid checked to still be that submission: its command line
 * carries the processing id), so that whether it made a job can be asked of Slurm and the answer stays true.
 */
export function stopHungSubmission(pid: number, marker: string): void {
  if (!processRunning(pid, marker)) return;
  try {
    process.kill(pid, "SIGKILL");
  } catch {
    // gone meanwhile, or not ours to signal: Slurm is asked either way
  }
}
