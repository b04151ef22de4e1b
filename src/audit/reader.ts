/**
 * Reading an audit file (a trail, a rotated trail, an `.err` file): every line parsed by the shared rule, a line
 * that is not an audit line (truncated by a crash, edited by hand) reported with its line number and skipped, the
 * rest still read. Symlinks are not followed (a trail is in a directory the team can write).
 */
import { closeSync, constants, fstatSync, openSync, readFileSync } from "node:fs";
import { DamnitError } from "../core/errors.js";
import { isNodeError } from "../core/node-errors.js";
import { parseAuditLine, type AuditRecord } from "./line.js";

export interface AuditEntry {
  readonly file: string;
  /** 1-based */
  readonly line: number;
  /** `YYYYmmdd-HHMMSS` */
  readonly time: string;
  readonly record: AuditRecord;
}

export interface AuditProblem {
  readonly file: string;
  readonly line: number;
  readonly reason: string;
}

export interface AuditFileContents {
  readonly entries: AuditEntry[];
  readonly problems: AuditProblem[];
}

/** The text of `file`, refusing a symlink or a non-regular file (BAD_ARGUMENT when missing). */
export function readAuditText(file: string): string {
  let fd: number;
  try {
    fd = openSync(file, constants.O_RDONLY | constants.O_NOFOLLOW);
  } catch (err) {
    if (isNodeError(err, "ENOENT")) throw new DamnitError("BAD_ARGUMENT", `${file} does not exist`);
    if (isNodeError(err, "ELOOP")) throw new DamnitError("UNSAFE_FILE", `refusing to read ${file}: it is a symbolic link`);
    throw new DamnitError("BAD_ARGUMENT", `cannot read ${file}: ${(err as Error).message}`);
  }
  try {
    if (!fstatSync(fd).isFile()) throw new DamnitError("BAD_ARGUMENT", `${file} is not a regular file`);
    return readFileSync(fd, "utf8");
  } finally {
    closeSync(fd);
  }
}

export function parseAuditText(file: string, text: string): AuditFileContents {
  const entries: AuditEntry[] = [];
  const problems: AuditProblem[] = [];
  const lines = text.split("\n");
  // A trail ends with a newline; an .err file has one line without it.
  if (lines.at(-1) === "") lines.pop();
  lines.forEach((text, i) => {
    if (text.trim() === "") return;
    const parsed = parseAuditLine(text);
    if (parsed.ok) entries.push({ file, line: i + 1, time: parsed.time, record: parsed.record });
    else problems.push({ file, line: i + 1, reason: parsed.reason });
  });
  return { entries, problems };
}

export function readAuditFile(file: string): AuditFileContents {
  return parseAuditText(file, readAuditText(file));
}
