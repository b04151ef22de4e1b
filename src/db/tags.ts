/**
 * Tags on variables. Untagging the last variable of a tag removes the tag (trigger from format v4), deleting a
 * variable removes its tags (foreign-key cascade, which needs `foreign_keys = ON` on the connection).
 */
import type Database from "better-sqlite3";
import { DamnitError } from "../core/errors.js";

/** Create the tag if needed; return its id. */
export function addTag(db: Database.Database, name: string): number {
  db.prepare("INSERT OR IGNORE INTO tags (name) VALUES (?)").run(name);
  return getTagId(db, name)!;
}

export function getTagId(db: Database.Database, name: string): number | undefined {
  const row = db.prepare("SELECT id FROM tags WHERE name = ?").get(name) as { id: number } | undefined;
  return row?.id;
}

export function tagVariable(db: Database.Database, variable: string, tag: string): void {
  db.transaction(() => {
    if (!db.prepare("SELECT 1 FROM variables WHERE name = ?").get(variable)) {
      throw new DamnitError("NO_SUCH_KEY", `cannot tag '${variable}': no such variable`);
    }
    const id = addTag(db, tag);
    db.prepare("INSERT OR IGNORE INTO variable_tags (variable_name, tag_id) VALUES (?, ?)").run(variable, id);
  }).immediate();
}

/** No error for an unknown tag or variable (DAMNIT's behaviour). */
export function untagVariable(db: Database.Database, variable: string, tag: string): void {
  db.transaction(() => {
    const id = getTagId(db, tag);
    if (id !== undefined) db.prepare("DELETE FROM variable_tags WHERE variable_name = ? AND tag_id = ?").run(variable, id);
  }).immediate();
}

export function getVariableTags(db: Database.Database, variable: string): string[] {
  const rows = db
    .prepare(
      "SELECT t.name FROM tags t JOIN variable_tags vt ON vt.tag_id = t.id WHERE vt.variable_name = ? ORDER BY t.name",
    )
    .all(variable) as { name: string }[];
  return rows.map((r) => r.name);
}

export function getVariablesByTag(db: Database.Database, tag: string): string[] {
  const rows = db
    .prepare(
      "SELECT vt.variable_name AS name FROM variable_tags vt JOIN tags t ON vt.tag_id = t.id WHERE t.name = ? ORDER BY vt.variable_name",
    )
    .all(tag) as { name: string }[];
  return rows.map((r) => r.name);
}

export function getAllTags(db: Database.Database): string[] {
  return (db.prepare("SELECT name FROM tags ORDER BY name").all() as { name: string }[]).map((r) => r.name);
}

/** Make a variable's tags exactly `tags` (adding new, removing stale). Call inside a write transaction. */
export function syncVariableTags(db: Database.Database, variable: string, tags: readonly string[]): void {
  const wanted = new Set(tags);
  const current = new Set(getVariableTags(db, variable));
  for (const tag of current) {
    if (!wanted.has(tag)) {
      db.prepare("DELETE FROM variable_tags WHERE variable_name = ? AND tag_id = ?").run(variable, getTagId(db, tag));
    }
  }
  for (const tag of wanted) {
    if (!current.has(tag)) {
      db.prepare("INSERT OR IGNORE INTO variable_tags (variable_name, tag_id) VALUES (?, ?)").run(variable, addTag(db, tag));
    }
  }
}
