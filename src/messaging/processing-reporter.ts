/**
 * What a processing job tells GUIs (spec §5.3): RUNNING when it starts and every 10 s while it runs (a heartbeat,
 * so a client can tell a live job from one that died), the variables and values it wrote, and when it finished.
 */
import { hostname, userInfo } from "node:os";
import type { Publisher } from "./publisher.js";
import type { JobRequest } from "../core/job-request.js";
import { processingFinished, processingStateSet, runValuesUpdated, updateTopic, variableSet, type ProcessingState } from "./messages.js";

export const HEARTBEAT_SECONDS = 10;

/** Which request the messages are about. */
export type ProcessingIdentity = Pick<JobRequest, "processingId" | "proposal" | "run" | "data">;

export function currentUser(): string {
  try {
    return userInfo().username;
  } catch {
    return process.env.USER ?? "";
  }
}

export class ProcessingReporter {
  private heartbeat: NodeJS.Timeout | undefined;
  private readonly pending: Array<Promise<void>> = [];
  readonly topic: string;

  constructor(
    private readonly publisher: Publisher,
    dbId: string,
    private readonly id: ProcessingIdentity,
    private readonly slurm: { cluster: string | null; jobId: string } = {
      cluster: process.env.SLURM_CLUSTER_NAME ?? null,
      jobId: process.env.SLURM_ARRAY_JOB_ID ? `${process.env.SLURM_ARRAY_JOB_ID}_${process.env.SLURM_ARRAY_TASK_ID}` : (process.env.SLURM_JOB_ID ?? ""),
    },
  ) {
    this.topic = updateTopic(dbId);
  }

  state(status: ProcessingState["status"], overrides: Partial<ProcessingState> = {}): ProcessingState {
    return {
      processing_id: this.id.processingId,
      proposal: this.id.proposal,
      run: this.id.run,
      data: this.id.data,
      status,
      hostname: status === "RUNNING" ? hostname() : "",
      username: status === "RUNNING" ? currentUser() : "",
      slurm_cluster: this.slurm.cluster,
      slurm_job_id: this.slurm.jobId,
      ...overrides,
    };
  }

  private send(...messages: Parameters<Publisher["send"]>[1]): void {
    this.pending.push(this.publisher.send(this.topic, messages));
  }

  running(): void {
    const beat = () => this.send(processingStateSet(this.state("RUNNING")));
    beat();
    this.heartbeat = setInterval(beat, HEARTBEAT_SECONDS * 1000);
    this.heartbeat.unref();
  }

  variablesUpdated(vars: ReadonlyArray<{ name: string; title: string | null; description: string | null; tags: readonly string[] }>): void {
    this.send(...vars.map((v) => variableSet(v)));
  }

  valuesStored(proposal: number, run: number, names: readonly string[]): void {
    this.send(runValuesUpdated(proposal, run, names));
  }

  /** Another job (e.g. the follow-up for cluster variables) is queued for this run. */
  pendingJob(state: ProcessingState): void {
    this.send(processingStateSet(state));
  }

  /** Stop the heartbeat, say the processing finished, and wait until everything was sent (or given up on). */
  async finished(): Promise<void> {
    if (this.heartbeat) clearInterval(this.heartbeat);
    this.heartbeat = undefined;
    this.send(processingFinished(this.id.processingId));
    await Promise.all(this.pending.splice(0));
  }
}
