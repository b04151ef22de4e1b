/** Run comments (a `comment` variable per run) and standalone time comments (`time_comments`). */
import type Database from "better-sqlite3";
import { DamnitError } from "../core/errors.js";
import { nowSeconds, setVariables } from "./run-variables.js";

export function setRunComment(db: Database.Database, proposal: number, run: number, text: string | null): void {
  setVariables(db, proposal, run, { comment: { value: text === "" ? null : text } }, { provenance: "manual-input" });
}

export interface TimeComment {
  id: number;
  timestamp: number;
  comment: string;
}

export function addTimeComment(db: Database.Database, text: string, timestamp: number = nowSeconds()): number {
  const result = db.transaction(() =>
    db.prepare("INSERT INTO time_comments (timestamp, comment) VALUES (?, ?)").run(timestamp, text),
  ).immediate();
  return Number(result.lastInsertRowid);
}

export function changeTimeComment(db: Database.Database, id: number, text: string): void {
  const { changes } = db.transaction(() =>
    db.prepare("UPDATE time_comments SET comment = ? WHERE rowid = ?").run(text, id),
  ).immediate();
  if (changes === 0) throw new DamnitError("NO_SUCH_KEY", `no time comment with id ${id}`);
}

export function deleteTimeComment(db: Database.Database, id: number): void {
  const { changes } = db.transaction(() => db.prepare("DELETE FROM time_comments WHERE rowid = ?").run(id)).immediate();
  if (changes === 0) throw new DamnitError("NO_SUCH_KEY", `no time comment with id ${id}`);
}

/** Newest first, as DAMNIT lists them. */
export function listTimeComments(db: Database.Database): TimeComment[] {
  return db
    .prepare("SELECT rowid AS id, timestamp, comment FROM time_comments ORDER BY timestamp DESC")
    .all() as TimeComment[];
}
