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
  journal_mode: {
    default: "delete",
    stored: false,
    meaning: "SQLite journal: 'delete' (rollback, safe on network file systems) or 'wal' (local disks only)",
  },
} as const satisfies Record<string, SettingSpec>;

export type KnownSetting = keyof typeof METAMETA_SETTINGS;
