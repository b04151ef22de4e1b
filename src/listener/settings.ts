/**
 * Every listener setting (`listener.sqlite` table `settings`), with its default, in one table. `stored` defaults are
 * inserted on every open when absent (DAMNIT's insert-if-missing), so `damnit listener config` shows them.
 */
export interface ListenerSettingSpec {
  readonly default: string | number;
  readonly stored: boolean;
  readonly meaning: string;
}

export const LISTENER_SETTINGS = {
  static_mode: { default: 1, stored: true, meaning: "1: process registered databases only; 0: also register each proposal's official database when it exists" },
  allow_local_processing: { default: 0, stored: true, meaning: "1: run a job here when Slurm submission fails" },
  sandbox_args: { default: "", stored: false, meaning: "command (shell words) wrapping user code: <args> <proposal> -- <command>" },
  kafka_brokers: {
    default: "",
    stored: false,
    meaning: "host:port,... of the notification brokers (env DAMNIT_KAFKA_BROKERS wins); empty or 'none': watch run directories instead",
  },
  kafka_profile: { default: "maxwell", stored: false, meaning: "maxwell (test.r2d2, cal.offline-corrections) or onc (test.euxfel.hed.daq/cal)" },
  kafka_raw_topic: { default: "", stored: false, meaning: "topic of raw-data notifications (default: the profile's)" },
  kafka_raw_event: { default: "", stored: false, meaning: "event meaning raw data is complete (default: the profile's)" },
  kafka_proc_topic: { default: "", stored: false, meaning: "topic of calibration notifications (default: the profile's)" },
  kafka_proc_event: { default: "", stored: false, meaning: "event meaning calibrated data is complete (default: the profile's)" },
  kafka_since: {
    default: "",
    stored: false,
    meaning: "notifications sent before this time (s since 1970) are ignored; set when the listener first listens (0: none ignored)",
  },
  kafka_group_id: { default: "", stored: false, meaning: "consumer group (default: xfel-da-damnit- + listener directory with / as _)" },
  local_concurrency: { default: "", stored: false, meaning: "runs processed here at once (default: min(CPUs/2, 10), at least 1)" },
  data_root: { default: "", stored: false, meaning: "where proposal directories are found (default: $EXTRA_DATA_DATA_ROOT, $XFEL_DATA_ROOT or /gpfs/exfel/exp)" },
  watch_interval_seconds: { default: 2, stored: false, meaning: "embedded mode: how often run directories are scanned" },
  watch_settle_seconds: { default: 2, stored: false, meaning: "embedded mode: a run is complete when its files are unchanged for this long" },
} as const satisfies Record<string, ListenerSettingSpec>;

export type ListenerSettingKey = keyof typeof LISTENER_SETTINGS;
