/**
 * The listener's own trail, `<listener dir>/audit/notifications.log`: the notifications that led to no request in
 * any database, with the reason (no database registered for the proposal, handled before (delivered again),
 * malformed, already queued or running). Same line format as the request trails; written only by
 * the listener, so the file stays open; owner-only like the listener's other files (private-files.ts). A facility's
 * notifications are mostly other proposals' (thousands a second while a backlog drains): the lines of one batch
 * are written together, once the batch's handling is done (setImmediate), which is before its offsets can be
 * committed; `close` writes what is left.
 */
import { mkdirSync } from "node:fs";
import { join } from "node:path";
import type { Logger } from "pino";
import { privateFileMode } from "../core/private-files.js";
import { formatAuditLine } from "./line.js";
import { kafkaPositionOf, type KafkaPosition, type SkippedRecord } from "./records.js";
import { AuditFile } from "./writer.js";
import { AUDIT_DIR } from "./trail.js";

export const NOTIFICATIONS_LOG = "notifications.log";

export interface SkippedNotification {
  readonly reason: string;
  /** `kafka <topic>[<partition>]@<offset> <time>`, `watch …`, or the message's position */
  readonly source: string;
  readonly proposal?: number;
  readonly run?: number;
  readonly kind?: string;
  readonly dbDir?: string;
  /** the message's position when known already (else read from `source`) */
  readonly kafka?: KafkaPosition;
}

export class ListenerTrail {
  private file: AuditFile | undefined;
  private warned = false;
  private pending: string[] = [];
  private flushing: NodeJS.Immediate | undefined;

  /** `enabled: false` (the listener's `audit` setting): nothing is written */
  constructor(
    readonly dir: string,
    readonly enabled: boolean,
    private readonly logger: Logger,
  ) {}

  get path(): string {
    return join(this.dir, AUDIT_DIR, NOTIFICATIONS_LOG);
  }

  skipped(n: SkippedNotification, now?: Date): void {
    if (!this.enabled) return;
    const kafka = n.kafka ?? kafkaPositionOf(n.source);
    const record: SkippedRecord = {
      skipped: n.reason,
      proposal: n.proposal ?? null,
      run: n.run ?? null,
      run_data: n.kind ?? null,
      source: n.source,
      kafka_topic: kafka?.topic ?? null,
      kafka_partition: kafka?.partition ?? null,
      kafka_offset: kafka?.offset ?? null,
      db_dir: n.dbDir ?? null,
      timestamp: (now?.getTime() ?? Date.now()) / 1000,
    };
    this.pending.push(`${formatAuditLine(record, now)}\n`);
    this.flushing ??= setImmediate(() => this.flush());
  }

  /** Write the lines not written yet. */
  flush(): void {
    if (this.flushing) clearImmediate(this.flushing);
    this.flushing = undefined;
    if (this.pending.length === 0) return;
    const text = this.pending.join("");
    this.pending = [];
    try {
      this.file ??= this.openFile();
      this.file.appendLines(text);
    } catch (err) {
      this.file?.close();
      this.file = undefined;
      // Once: a listener whose trail is unwritable keeps working, and its log is not flooded.
      if (!this.warned) this.logger.warn(`Could not write the listener's audit trail ${this.path}: ${(err as Error).message}`);
      this.warned = true;
    }
  }

  close(): void {
    this.flush();
    this.file?.close();
    this.file = undefined;
  }

  private openFile(): AuditFile {
    mkdirSync(join(this.dir, AUDIT_DIR), { recursive: true, mode: 0o700 });
    return new AuditFile(this.path, { mode: privateFileMode(this.dir).mode, keepOpen: true });
  }
}
