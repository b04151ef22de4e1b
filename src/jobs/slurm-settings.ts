/**
 * Slurm resources for a database's jobs, from its `metameta` settings (defaults in src/db/defaults.ts). What the job
 * runs is not among them: proposal members can write `metameta`, so the command comes from whoever submits (the
 * listener's own `damnit_command` setting, or this installation), never from the database.
 */
import type { RunDatabase } from "../db/run-database.js";

export interface SlurmSettings {
  readonly time: string;
  readonly cpus: string;
  readonly mem: string;
  readonly reservation: string;
  readonly partition: string;
  readonly nonclusterPartition: string;
  /** `--clusters` for normal jobs and for cluster-variable jobs ("" for the local cluster) */
  readonly nonclusterSlurmCluster: string;
  readonly clusterSlurmCluster: string;
  readonly concurrentJobs: number;
  /** the `damnit` jobs run ("" for this installation); the submitter's choice, never the database's */
  readonly damnitCommand: string;
}

export function slurmSettings(db: RunDatabase, damnitCommand = ""): SlurmSettings {
  const s = db.settings;
  return {
    time: s.get("slurm_time"),
    cpus: s.get("noncluster_cpus"),
    mem: s.get("noncluster_mem"),
    reservation: s.get("slurm_reservation"),
    partition: s.get("slurm_partition"),
    nonclusterPartition: s.get("noncluster_partition"),
    nonclusterSlurmCluster: s.get("noncluster_slurm_cluster"),
    clusterSlurmCluster: s.get("cluster_slurm_cluster"),
    concurrentJobs: s.get("concurrent_jobs"),
    damnitCommand,
  };
}

/** DAMNIT's resource options (spec §2.2): normal jobs get cpus and memory; cluster jobs a reservation or partition. */
export function resourceOptions(s: SlurmSettings, cluster: boolean): string[] {
  const opts: string[] = [];
  const slurmCluster = cluster ? s.clusterSlurmCluster : s.nonclusterSlurmCluster;
  if (slurmCluster) opts.push("--clusters", slurmCluster);
  if (s.time) opts.push("--time", s.time);
  if (!cluster) {
    if (s.cpus) opts.push("--cpus-per-task", s.cpus);
    if (s.mem) opts.push("--mem", s.mem);
    if (s.nonclusterPartition) opts.push("--partition", s.nonclusterPartition);
  } else if (s.reservation) {
    opts.push("--reservation", s.reservation);
  } else if (s.partition) {
    opts.push("--partition", s.partition);
  }
  return opts;
}
