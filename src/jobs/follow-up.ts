/**
 * The follow-up job for a run's `cluster` variables (spec §2.6): inside a Slurm job, the job submits another one
 * that computes them, starting once this one succeeded when both run on the same Slurm cluster. When the
 * submission fails they are computed in this job instead. The submission is audited like any other request.
 */
import { audited } from "../audit/trail.js";
import type { RunDatabase } from "../db/run-database.js";
import type { RunLog } from "../extract/run-log.js";
import { pendingState, type ProcessingState } from "../messaging/messages.js";
import { contextHash, idempotencyKey } from "./idempotency.js";
import { newProcessingId, type JobRequest } from "./request.js";
import { submitJob, type SubmitOptions } from "./sbatch.js";
import { slurmSettings, type SlurmSettings } from "./slurm-settings.js";

export interface ClusterFollowUp {
  readonly request: JobRequest;
  readonly options: SubmitOptions;
  /** whether it waits for this job to succeed (`afterok`) */
  readonly afterThisJob: boolean;
}

/**
 * The follow-up of `request` (a job running as Slurm job `slurmJobId`): the same run and selection as a cluster job
 * that leaves the variables table alone. A dependency can only name a job of the same Slurm cluster (DAMNIT's
 * follow-up goes to another one, submitted as the first job ends anyway).
 */
export function clusterFollowUp(request: JobRequest, settings: SlurmSettings, slurmJobId: string): ClusterFollowUp {
  const followUp: JobRequest = {
    proposal: request.proposal,
    run: request.run,
    data: request.data,
    processingId: newProcessingId(),
    cluster: true,
    match: request.match,
    variables: request.variables,
    mock: request.mock,
    updateVars: false,
    sandboxArgs: request.sandboxArgs,
  };
  const afterThisJob = settings.clusterSlurmCluster === settings.nonclusterSlurmCluster;
  return { request: followUp, options: { settings, dependency: afterThisJob ? `afterok:${slurmJobId}` : undefined }, afterThisJob };
}

/**
 * What `processRunsLocally` calls when a run has cluster variables (its `onClusterFollowUp`): submit the follow-up
 * job, announce it as PENDING and resolve true, or log why not and resolve false (computed here then).
 * Undefined outside a Slurm job: the cluster variables are computed here.
 */
export function clusterFollowUpViaSlurm(
  db: RunDatabase,
  request: JobRequest,
  announce: { pendingJob(state: ProcessingState): void },
  slurmJobId: string | undefined = process.env.SLURM_JOB_ID,
): ((run: unknown, runLog: RunLog) => Promise<boolean>) | undefined {
  if (!slurmJobId) return undefined;
  return async (_run, runLog) => {
    try {
      const followUp = clusterFollowUp(request, slurmSettings(db), slurmJobId);
      const { proposal, run, data } = followUp.request;
      const context = { origin: "job" as const, dbDir: db.dir, idempotencyKey: idempotencyKey(proposal, run, data, contextHash(db.dir)) };
      const job = await audited(followUp.request, context, () => submitJob(db.dir, followUp.request, followUp.options));
      runLog.logger.info(`Submitted Slurm job ${job.jobId} for the cluster variables${followUp.afterThisJob ? " (after this job succeeds)" : ""}`);
      announce.pendingJob(pendingState(followUp.request, job));
      return true;
    } catch (err) {
      runLog.logger.warn(`${err instanceof Error ? err.message : String(err)}; computing the cluster variables here instead`);
      return false;
    }
  };
}
