/**
 * Every `metameta` setting this code reads, with its kind and default, in one table: `RunDatabase.settings.get`
 * reads through it, `damnit db-config --defaults` prints it. `stored` defaults are written when a database is
 * created; the others apply when the key is absent. Keys not listed here (DAMNIT's tools keep their own) are kept
 * and shown, but the code never reads them.
 */
import { totalmem } from "node:os";
import { SettingsReader, settingsTable } from "../core/settings.js";

export const METAMETA_SETTINGS = settingsTable({
  data_format_version: { kind: "integer", default: 4, stored: true, meaning: "schema version (managed by migrations)" },
  db_id: {
    kind: "text",
    default: "",
    defaultText: "40 random hex digits, made when the database is created",
    stored: true,
    meaning: "identity; names the Kafka update topic test.damnit.db-<db_id>",
  },
  concurrent_jobs: { kind: "positive-integer", default: 15, stored: true, meaning: "array-job concurrency limit (%N) for reprocessing" },
  proposal: { kind: "text", default: "", stored: false, meaning: "the proposal this database belongs to (set by `damnit proposal`)" },
  context_python: { kind: "text", default: "", stored: false, meaning: "Python interpreter for context.py (run by the context runner, inside sandbox_args when set); empty: python3 on PATH" },
  damnit_python: { kind: "text", default: "", stored: false, meaning: "DAMNIT (Python) job interpreter; kept for its tools" },
  slurm_time: { kind: "text", default: "02:00:00", stored: false, meaning: "sbatch --time" },
  noncluster_cpus: { kind: "text", default: "4", stored: false, meaning: "sbatch --cpus-per-task for normal jobs" },
  noncluster_mem: { kind: "text", default: "25G", stored: false, meaning: "sbatch --mem for normal jobs" },
  slurm_reservation: { kind: "text", default: "", stored: false, meaning: "sbatch --reservation for cluster jobs (wins over partition)" },
  slurm_partition: { kind: "text", default: "", stored: false, meaning: "sbatch --partition for cluster jobs" },
  noncluster_partition: {
    kind: "text",
    default: "",
    defaultText: "the cluster's default",
    stored: false,
    meaning: "sbatch --partition for normal jobs",
  },
  noncluster_slurm_cluster: {
    kind: "text",
    default: "",
    defaultText: "the local cluster",
    stored: false,
    meaning: "sbatch --clusters for normal jobs (DAMNIT: solaris)",
  },
  cluster_slurm_cluster: {
    kind: "text",
    default: "",
    defaultText: "the local cluster",
    stored: false,
    meaning: "sbatch --clusters for cluster-variable jobs (DAMNIT: maxwell)",
  },
  data_root: {
    kind: "text",
    default: "",
    defaultText: "$EXTRA_DATA_DATA_ROOT, $XFEL_DATA_ROOT or /gpfs/exfel/exp",
    stored: false,
    meaning: "root of the run data (<root>/<instrument>/<cycle>/p<proposal>/raw|proc)",
  },
  variable_timeout: { kind: "positive", default: 3600, stored: false, meaning: "seconds one variable may run before it is stopped (TimeoutError)" },
  runner_memory_limit_mb: {
    kind: "positive",
    default: () => Math.floor((totalmem() / 2 ** 20) * 0.75),
    defaultText: "3/4 of the machine's memory",
    stored: false,
    meaning: "MiB the context runner may use before it is stopped (MemoryError)",
  },
  result_size_limit_mb: { kind: "positive", default: 1024, stored: false, meaning: "largest result (MiB) a variable may return; larger is an error" },
  lookup_upstreams: {
    kind: "text",
    default: "",
    defaultText: "none: jobs start no lookup recorder",
    stored: false,
    meaning: 'external services context code may look things up in, JSON {"service": "https://…"} (recorded in <db dir>/lookups.sqlite)',
  },
  lookup_mode: { kind: "text", default: "record", stored: false, meaning: "jobs' lookup recorder: record, replay (never ask upstreams) or passthrough" },
  calib_proposal_dir: {
    kind: "text",
    default: "",
    defaultText: "<proposal dir>/usr/Shared/amore/calib",
    stored: false,
    meaning: "calibration-constant store of the proposal: the second lookup level of calibration.get, after <db dir>/calib",
  },
  calib_repository: {
    kind: "text",
    default: "",
    defaultText: "none",
    stored: false,
    meaning: "facility calibration-constant store: the third lookup level of calibration.get",
  },
  closed: {
    kind: "flag",
    default: false,
    stored: false,
    meaning: "1: the database is frozen, as with run_info/CLOSED: the listener skips its runs, reprocess, extract and web edits are refused",
  },
  journal_mode: {
    kind: "text",
    default: "delete",
    stored: false,
    meaning: "SQLite journal: 'delete' (rollback, safe on network file systems) or 'wal' (local disks only)",
  },
  web_views: { kind: "text", default: "", defaultText: "none", stored: false, meaning: "the web table's saved views, JSON {name: view} (written by damnit web's Save view)" },
  web_poll_ms: { kind: "positive", default: 100, stored: false, meaning: "how often (ms) damnit web checks the database's data_version for commits by others" },
  web_pending_timeout: {
    kind: "positive",
    default: 86_400,
    stored: false,
    meaning: "seconds damnit web shows a run as pending without news of its job (RUNNING states need a heartbeat every 10 s)",
  },
});

export type MetametaSettings = typeof METAMETA_SETTINGS;
export type KnownSetting = keyof MetametaSettings;

/** The defaults alone, for code that runs without a database (e.g. `read-context` in a directory without one). */
export const METAMETA_DEFAULTS = new SettingsReader<MetametaSettings>(METAMETA_SETTINGS, () => undefined);
