/**
 * The update messages GUIs and other clients read (spec §5): JSON `{msg_kind, data}` on the database's topic
 * `test.damnit.db-<db_id>`. Messages are idempotent; receivers re-read the database.
 */
import type { DataKind } from "../core/data-kind.js";
import type { JobRequest } from "../core/job-request.js";

export interface VariableSetData {
  name: string;
  title: string | null;
  description: string | null;
  tags: string[] | null;
  attributes: null;
  type: null;
}

export interface ProcessingState {
  processing_id: string;
  proposal: number;
  run: number;
  data: DataKind;
  status: "RUNNING" | "PENDING";
  hostname: string;
  username: string;
  slurm_cluster: string | null;
  slurm_job_id: string;
}

/** A request queued as a Slurm job (PENDING): no host or user yet, the job's id and cluster ("" → null). */
export function pendingState(request: Pick<JobRequest, "processingId" | "proposal" | "run" | "data">, job: { jobId: string; cluster: string }): ProcessingState {
  return {
    processing_id: request.processingId,
    proposal: request.proposal,
    run: request.run,
    data: request.data,
    status: "PENDING",
    hostname: "",
    username: "",
    slurm_cluster: job.cluster || null,
    slurm_job_id: job.jobId,
  };
}

export type UpdateMessage =
  | { msg_kind: "variable_set"; data: VariableSetData }
  | { msg_kind: "run_values_updated"; data: { proposal: number; run: number; values: Record<string, null> } }
  | { msg_kind: "processing_state_set"; data: ProcessingState }
  | { msg_kind: "processing_finished"; data: { processing_id: string } };

export function updateTopic(dbId: string): string {
  return `test.damnit.db-${dbId}`;
}

export function variableSet(v: { name: string; title?: string | null; description?: string | null; tags?: readonly string[] | null }): UpdateMessage {
  return {
    msg_kind: "variable_set",
    data: { name: v.name, title: v.title ?? null, description: v.description ?? null, tags: v.tags ? [...v.tags] : null, attributes: null, type: null },
  };
}

export function runValuesUpdated(proposal: number, run: number, names: readonly string[]): UpdateMessage {
  return { msg_kind: "run_values_updated", data: { proposal, run, values: Object.fromEntries(names.map((n) => [n, null])) } };
}

export function processingStateSet(state: ProcessingState): UpdateMessage {
  return { msg_kind: "processing_state_set", data: state };
}

export function processingFinished(processingId: string): UpdateMessage {
  return { msg_kind: "processing_finished", data: { processing_id: processingId } };
}
