/**
 * Every listener setting (`listener.sqlite` table `settings`), with its kind and default, in one table that every
 * reader goes through (`SettingsReader`) and `damnit listener config --defaults` prints. `stored` defaults are
 * inserted on every open when absent (DAMNIT's insert-if-missing), so `damnit listener config` shows them.
 */
import { availableParallelism } from "node:os";
import { settingsTable } from "../core/settings.js";

export const LISTENER_SETTINGS = settingsTable({
  static_mode: {
    kind: "flag",
    default: true,
    stored: true,
    meaning: "1: process registered databases only; 0: also register each proposal's official database when it exists",
  },
  allow_local_processing: { kind: "flag", default: false, stored: true, meaning: "1: run a job here when Slurm submission fails" },
  damnit_command: {
    kind: "text",
    default: "",
    defaultText: "this installation's damnit",
    stored: false,
    meaning: "damnit command line (shell words) the listener's Slurm jobs run",
  },
  sandbox_args: { kind: "text", default: "", stored: false, meaning: "command (shell words) wrapping user code: <args> <proposal> -- <command>" },
  kafka_brokers: {
    kind: "text",
    default: "",
    stored: false,
    meaning: "host:port,... of the notification brokers (env DAMNIT_KAFKA_BROKERS wins); empty or 'none': watch run directories instead",
  },
  kafka_profile: { kind: "text", default: "maxwell", stored: false, meaning: "maxwell (test.r2d2, cal.offline-corrections) or onc (test.euxfel.hed.daq/cal)" },
  kafka_raw_topic: { kind: "text", default: "", defaultText: "the profile's", stored: false, meaning: "topic of raw-data notifications" },
  kafka_raw_event: { kind: "text", default: "", defaultText: "the profile's", stored: false, meaning: "event meaning raw data is complete" },
  kafka_proc_topic: { kind: "text", default: "", defaultText: "the profile's", stored: false, meaning: "topic of calibration notifications" },
  kafka_proc_event: { kind: "text", default: "", defaultText: "the profile's", stored: false, meaning: "event meaning calibrated data is complete" },
  kafka_since: {
    kind: "number",
    default: 0,
    defaultText: "set to the time the listener first listens",
    stored: false,
    meaning: "notifications sent before this time (s since 1970) are ignored (0: none ignored)",
  },
  kafka_group_id: {
    kind: "text",
    default: "",
    defaultText: "xfel-da-damnit- + listener directory with / as _",
    stored: false,
    meaning: "Kafka consumer group",
  },
  local_concurrency: {
    kind: "positive-integer",
    default: () => Math.max(1, Math.min(Math.floor(availableParallelism() / 2), 10)),
    defaultText: "min(CPUs/2, 10), at least 1",
    stored: false,
    meaning: "runs processed here at once",
  },
  data_root: {
    kind: "text",
    default: "",
    defaultText: "$EXTRA_DATA_DATA_ROOT, $XFEL_DATA_ROOT or /gpfs/exfel/exp",
    stored: false,
    meaning: "where proposal directories are found",
  },
  max_delivery_attempts: {
    kind: "positive-integer",
    default: 5,
    stored: false,
    meaning: "Kafka: attempts at handling one message before it is quarantined (see 'damnit listener quarantine')",
  },
  kafka_join_timeout_seconds: {
    kind: "positive",
    default: 60,
    stored: false,
    meaning: "Kafka: a consumer not in its group (or not fetching) for this long is replaced by a new one",
  },
  api_port: {
    kind: "integer",
    default: 0,
    stored: false,
    meaning: "port of the control API on 127.0.0.1 (0: a free one); the port is written to api.port, the token to api.token",
  },
  watch_interval_seconds: { kind: "positive", default: 2, stored: false, meaning: "embedded mode: how often run directories are scanned" },
  audit: {
    kind: "flag",
    default: true,
    stored: false,
    meaning: "1: write the audit trails (each database's audit/requests.log, and audit/notifications.log here for notifications that made no request)",
  },
  audit_only: {
    kind: "flag",
    default: false,
    stored: false,
    meaning: "1: notifications are audited and acknowledged but nothing is submitted (an outage); 'damnit replay --audit … --since …' submits them afterwards",
  },
  watch_settle_seconds: { kind: "non-negative", default: 2, stored: false, meaning: "embedded mode: a run is complete when its files are unchanged for this long" },
});

export type ListenerSettings = typeof LISTENER_SETTINGS;
export type ListenerSettingKey = keyof ListenerSettings;
