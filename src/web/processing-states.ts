/**
 * Which runs of one database are being processed, from the update messages (spec §5.3): `processing_state_set`
 * (PENDING from the listener or reprocess when a Slurm job is queued, RUNNING from the job itself, every 10 s)
 * and `processing_finished`. A RUNNING state whose heartbeats stopped (the job died) is dropped after three missed
 * beats; a PENDING one (no heartbeat) after `pendingTimeoutS` (a job cancelled while queued sends nothing).
 */
import { HEARTBEAT_SECONDS } from "../messaging/processing-reporter.js";
import type { ProcessingState, UpdateMessage } from "../messaging/messages.js";

export const RUNNING_STALE_MS = 3 * HEARTBEAT_SECONDS * 1000;

export class ProcessingStates {
  private readonly states = new Map<string, { state: ProcessingState; seen: number }>();

  constructor(
    private readonly pendingTimeoutS: number,
    private readonly onChange: (states: ProcessingState[]) => void,
    private readonly now: () => number = Date.now,
  ) {}

  /** Apply one update message (others are ignored); tells onChange when the states changed. */
  apply(message: UpdateMessage): void {
    if (message.msg_kind === "processing_state_set") {
      const s = message.data;
      if (typeof s?.processing_id !== "string" || typeof s.proposal !== "number" || typeof s.run !== "number") return;
      const before = this.states.get(s.processing_id);
      this.states.set(s.processing_id, { state: s, seen: this.now() });
      if (!before || JSON.stringify(before.state) !== JSON.stringify(s)) this.onChange(this.list());
    } else if (message.msg_kind === "processing_finished") {
      if (this.states.delete(message.data?.processing_id)) this.onChange(this.list());
    }
  }

  /** Drop states that are no longer believable (see above); tells onChange if any went. */
  sweep(): void {
    const now = this.now();
    let dropped = false;
    for (const [id, { state, seen }] of this.states) {
      const limit = state.status === "RUNNING" ? RUNNING_STALE_MS : this.pendingTimeoutS * 1000;
      if (now - seen > limit) dropped = this.states.delete(id);
    }
    if (dropped) this.onChange(this.list());
  }

  list(): ProcessingState[] {
    return [...this.states.values()].map((s) => s.state);
  }
}
