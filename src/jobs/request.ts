/**
 * The command line of the job that carries out a request to process one run (spec §2.1): `damnit extract` in the
 * database directory. Argument arrays all the way: no user value is ever parsed by a shell.
 */
import { randomUUID } from "node:crypto";
import { fileURLToPath } from "node:url";
import type { JobRequest } from "../core/job-request.js";

export type { JobRequest } from "../core/job-request.js";

export function newProcessingId(): string {
  return randomUUID();
}

/** This installation's `damnit` (the Node running now and bin/damnit.js), or the listener's `damnit_command`. */
export function damnitCommand(setting?: string | number | null): string[] {
  const text = setting === undefined || setting === null ? "" : String(setting).trim();
  if (text !== "") return text.split(/\s+/);
  return [process.execPath, fileURLToPath(new URL("../../../bin/damnit.js", import.meta.url))];
}

/** `extract <P> <R> <data> --processing-id <id> [--cluster-job] [--var …|--match …] [--mock] [--force] [--update-vars|--no-update-vars] [--sandbox-args …]` */
export function extractArguments(req: JobRequest): string[] {
  const args = ["extract", String(req.proposal), String(req.run), req.data, "--processing-id", req.processingId];
  if (req.cluster) args.push("--cluster-job");
  if (req.variables && req.variables.length > 0) for (const v of req.variables) args.push("--var", v);
  else for (const m of req.match ?? []) args.push("--match", m);
  if (req.mock) args.push("--mock");
  if (req.force) args.push("--force");
  if (req.replayLookups) args.push("--replay-lookups");
  if (req.pinCalibration) args.push("--pin-calibration");
  args.push(req.updateVars ?? true ? "--update-vars" : "--no-update-vars");
  if (req.sandboxArgs) args.push("--sandbox-args", req.sandboxArgs);
  for (const p of req.params ?? []) args.push("--param", p);
  return args;
}

export function jobName(req: Pick<JobRequest, "proposal" | "run">): string {
  return req.run === -1 ? `p${req.proposal}-damnit` : `r${req.run}-p${req.proposal}-damnit`;
}

/**
 * The request in a job's command line (`… extract <P> <R> <data> --processing-id <id> …`, as extractArguments
 * writes it), for the job's wrapper to name it when the job dies without saying why; undefined when it is none.
 */
export function requestFromArguments(argv: readonly string[]): JobRequest | undefined {
  const at = argv.indexOf("extract");
  if (at < 0) return undefined;
  const [p, r, data] = argv.slice(at + 1, at + 4);
  const proposal = Number(p);
  const run = Number(r);
  if (!Number.isSafeInteger(proposal) || !Number.isSafeInteger(run) || (data !== "raw" && data !== "proc" && data !== "all")) return undefined;
  const rest = argv.slice(at + 4);
  const values = (flag: string) => rest.flatMap((a, i) => (a === flag && i + 1 < rest.length ? [rest[i + 1]!] : []));
  const processingId = values("--processing-id")[0];
  if (!processingId) return undefined;
  const variables = values("--var");
  const match = values("--match");
  return {
    proposal,
    run,
    data,
    processingId,
    cluster: rest.includes("--cluster-job"),
    ...(variables.length > 0 ? { variables } : {}),
    ...(match.length > 0 ? { match } : {}),
  };
}
