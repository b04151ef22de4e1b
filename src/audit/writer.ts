/**
 * Appending audit lines to a trail file with daily rotation that keeps the format: on the first line of a new day,
 * the file (whose last line was written on an earlier day) becomes `<file>.<YYYYmmdd>` (that day) and a new file
 * is begun. Several processes may write one trail (the listener, `reprocess`, a replay): each line is one
 * `write` on a descriptor opened O_APPEND, and a rotation is done by one of them only (the one that creates the
 * dated name first, O_EXCL), then renamed over it. Files are opened without following symlinks and must be
 * regular (safe-open.ts). A trail kept open (`keepOpen`, one writer: the listener's own) pays no open per line.
 */
import { closeSync, fstatSync, renameSync, unlinkSync, writeSync } from "node:fs";
import { isDamnitError } from "../core/errors.js";
import { isNodeError } from "../core/node-errors.js";
import { createFresh, openForAppend } from "../core/safe-open.js";
import { auditDay, formatAuditLine, type AuditRecord } from "./line.js";

export interface AuditFileOptions {
  /** a new file's mode */
  readonly mode: number;
  /** keep the descriptor between lines (only when this process is the file's one writer) */
  readonly keepOpen?: boolean;
}

export class AuditFile {
  private fd: number | undefined;
  /** the local day the open descriptor's file belongs to */
  private fdDay = "";

  constructor(
    readonly path: string,
    private readonly opts: AuditFileOptions,
  ) {}

  /** Append one line (`[now] {record}` and a newline); throws when the file cannot be written. */
  append(record: AuditRecord, now: Date = new Date()): void {
    this.appendLines(`${formatAuditLine(record, now)}\n`, now);
  }

  /** Append lines formatted already (each newline-terminated), in one write; `now` decides the day's file. */
  appendLines(text: string, now: Date = new Date()): void {
    const line = text;
    const today = auditDay(now);
    if (this.fd !== undefined && this.fdDay !== today) this.closeFd();
    const fd = this.fd ?? this.open(today, now);
    try {
      writeSync(fd, line);
    } finally {
      if (!this.opts.keepOpen) this.closeFd();
    }
  }

  close(): void {
    this.closeFd();
  }

  private closeFd(): void {
    if (this.fd !== undefined) closeSync(this.fd);
    this.fd = undefined;
  }

  /** Open the trail for today's lines, rotating a file last written on an earlier day. */
  private open(today: string, now: Date): number {
    let fd = openForAppend(this.path, this.opts.mode);
    const stat = fstatSync(fd);
    const fileDay = auditDay(stat.mtime);
    if (stat.size > 0 && fileDay < today && now.getTime() >= stat.mtimeMs) {
      closeSync(fd);
      this.rotate(fileDay);
      fd = openForAppend(this.path, this.opts.mode);
    }
    this.fd = fd;
    this.fdDay = today;
    return fd;
  }

  /** `<path>` → `<path>.<day>`, by the one process that claims the dated name; the others leave it. */
  private rotate(day: string): void {
    const dated = `${this.path}.${day}`;
    try {
      closeSync(createFresh(dated, this.opts.mode));
    } catch (err) {
      if (isDamnitError(err, "UNSAFE_FILE")) return; // rotated (or being rotated) by another writer
      throw err;
    }
    try {
      renameSync(this.path, dated);
    } catch (err) {
      // gone meanwhile: nothing to rotate, and the claimed name is not wanted
      if (!isNodeError(err, "ENOENT")) throw err;
      unlinkSync(dated);
    }
  }
}
