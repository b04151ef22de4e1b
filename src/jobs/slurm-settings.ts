/** Slurm resources for a database's jobs, from its `metameta` settings (defaults in src/db/defaults.ts). */
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
  /** the `damnit` jobs run ("" for this installation) */
  readonly damnitCommand: string;
}

export function slurmSettings(db: RunDatabase): SlurmSettings {
  const text = (key: string, fallback: string) => {
    const value = db.getSetting(key);
    return value === undefined || value === null ? fallback : String(value).trim();
  };
  const jobs = Number(text("concurrent_jobs", "15"));
  return {
    time: text("slurm_time", "02:00:00"),
    cpus: text("noncluster_cpus", "4"),
    mem: text("noncluster_mem", "25G"),
    reservation: text("slurm_reservation", ""),
    partition: text("slurm_partition", ""),
    nonclusterPartition: text("noncluster_partition", ""),
    nonclusterSlurmCluster: text("noncluster_slurm_cluster", ""),
    clusterSlurmCluster: text("cluster_slurm_cluster", ""),
    concurrentJobs: Number.isInteger(jobs) && jobs > 0 ? jobs : 15,
    damnitCommand: text("damnit_command", ""),
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
