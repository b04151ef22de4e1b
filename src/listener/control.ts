/**
 * The listener's run-time switches, shared by the notification handling and the control API: paused (notifications
 * are kept in the inbox, not submitted, until resumed), audit-only, and the notifications being handled right now
 * (so that draining the inbox on resume never handles one twice). Pausing lasts until resumed or the listener stops:
 * a restarted listener handles what the inbox kept.
 */
export class ListenerControl {
  paused = false;
  /** notifications are recorded but not submitted (issue 17 item 4; set by `--audit-only` / `audit_only`) */
  auditOnly = false;
  readonly startedAt = Date.now() / 1000;
  /** inbox sources being handled now */
  readonly inFlight = new Set<string>();
  /** the inbox drain after the last resume (one at a time) */
  draining: Promise<void> = Promise.resolve();
}
