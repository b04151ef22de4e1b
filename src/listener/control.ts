/**
 * The listener's run-time switches, shared by the notification handling and the control API: paused (notifications
 * are kept in the inbox, not submitted, until resumed), audit-only, and the notifications being handled right now
 * (so that draining the inbox on resume never handles one twice). Pausing lasts until resumed or the listener stops:
 * a restarted listener handles what the inbox kept.
 */
export class ListenerControl {
  paused = false;
  /** `--audit-only`: notifications are recorded but not submitted (the `audit_only` setting, read as it is now, too) */
  auditOnly = false;
  readonly startedAt = Date.now() / 1000;
  /** inbox sources being handled now */
  readonly inFlight = new Set<string>();
  /** the inbox drain after the last resume (one at a time) */
  draining: Promise<void> = Promise.resolve();
}
