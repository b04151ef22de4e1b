/** Which of some Slurm jobs are still queued or running (for not submitting a duplicate while one is). */
import { loadExeca } from "../core/lazy-execa.js";

const ACTIVE = new Set(["PENDING", "RUNNING", "CONFIGURING", "COMPLETING", "SUSPENDED", "REQUEUED", "RESIZING", "SIGNALING", "STAGE_OUT"]);

/**
 * The ids (as given, e.g. `12` or `12_3`) of jobs on `cluster` ("" for the local one) that are still queued or
 * running; null when squeue could not say (controller down, no Slurm).
 */
export async function activeJobs(ids: readonly string[], cluster = ""): Promise<Set<string> | null> {
  if (ids.length === 0) return new Set();
  const result = await (await loadExeca())("squeue", [...(cluster ? ["--clusters", cluster] : []), "--noheader", "--array", "--states=all", "--format=%i %T", `--jobs=${ids.join(",")}`], {
    reject: false,
    timeout: 30_000,
    stdin: "ignore",
  }).catch(() => null);
  if (!result) return null;
  if (result.exitCode !== 0) {
    // Every id finished long ago (past MinJobAge): squeue calls them invalid.
    if (/Invalid job id/i.test(String(result.stderr))) return new Set();
    return null;
  }
  const active = new Set<string>();
  for (const line of String(result.stdout).split("\n")) {
    const [id, state] = line.trim().split(/\s+/);
    if (id && state && ACTIVE.has(state)) active.add(id);
  }
  return new Set(ids.filter((id) => active.has(id)));
}
