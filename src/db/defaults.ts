/**
 * Every `metameta` setting this code reads, with its default, in one table. `stored` defaults are written when a
 * database is created; the others apply when the key is absent.
 */
export interface SettingSpec {
  readonly default: string | number;
  readonly stored: boolean;
  readonly meaning: string;
}

export const METAMETA_SETTINGS = {
  data_format_version: { default: 4, stored: true, meaning: "schema version (managed by migrations)" },
  db_id: { default: "<random 40 hex>", stored: true, meaning: "identity; names the Kafka update topic test.damnit.db-<db_id>" },
  concurrent_jobs: { default: 15, stored: true, meaning: "array-job concurrency limit (%N) for reprocessing" },
  proposal: { default: "", stored: false, meaning: "the proposal this database belongs to (set by `damnit proposal`)" },
  damnit_command: { default: "", stored: false, meaning: "damnit executable that jobs run (default: the one running)" },
  context_python: { default: "", stored: false, meaning: "DAMNIT (Python) interpreter for context files; kept for its tools" },
  damnit_python: { default: "", stored: false, meaning: "DAMNIT (Python) job interpreter; kept for its tools" },
  slurm_time: { default: "02:00:00", stored: false, meaning: "sbatch --time" },
  noncluster_cpus: { default: "4", stored: false, meaning: "sbatch --cpus-per-task for normal jobs" },
  noncluster_mem: { default: "25G", stored: false, meaning: "sbatch --mem for normal jobs" },
  slurm_reservation: { default: "", stored: false, meaning: "sbatch --reservation for cluster jobs (wins over partition)" },
  slurm_partition: { default: "", stored: false, meaning: "sbatch --partition for cluster jobs" },
  noncluster_partition: { default: "", stored: false, meaning: "sbatch --partition for normal jobs (default: the cluster's default)" },
  noncluster_slurm_cluster: { default: "", stored: false, meaning: "sbatch --clusters for normal jobs (DAMNIT: solaris; default: the local cluster)" },
  cluster_slurm_cluster: { default: "", stored: false, meaning: "sbatch --clusters for cluster-variable jobs (DAMNIT: maxwell; default: the local cluster)" },
  data_root: {
    default: "",
    stored: false,
    meaning: "root of the run data (<root>/<instrument>/<cycle>/p<proposal>/raw|proc); default $EXTRA_DATA_DATA_ROOT or /gpfs/exfel/exp",
  },
  variable_timeout: { default: 3600, stored: false, meaning: "seconds one variable may run before it is stopped (TimeoutError)" },
  runner_memory_limit_mb: {
    default: "",
    stored: false,
    meaning: "MiB the context runner may use before it is stopped (MemoryError); default 3/4 of the machine's memory",
  },
  result_size_limit_mb: { default: 1024, stored: false, meaning: "largest result (MiB) a variable may return; larger is an error" },
  journal_mode: {
    default: "delete",
    stored: false,
    meaning: "SQLite journal: 'delete' (rollback, safe on network file systems) or 'wal' (local disks only)",
  },
} as const satisfies Record<string, SettingSpec>;

export type KnownSetting = keyof typeof METAMETA_SETTINGS;
