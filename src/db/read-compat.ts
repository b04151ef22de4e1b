/**
 * Reading an older (v1–v3) database that cannot be upgraded because it is read-only (an archived proposal, say).
 * Temporary objects shadow what the old schema lacks, so every reader works unchanged; nothing is written to the
 * file (temporary objects live in the connection's own temp database).
 */
import type Database from "better-sqlite3";

export function addReadCompatibility(db: Database.Database): void {
  const columns = (db.prepare("SELECT name FROM pragma_table_info('run_variables')").all() as { name: string }[]).map((c) => c.name);
  if (!columns.includes("attributes")) {
    db.exec("CREATE TEMP VIEW run_variables AS SELECT *, NULL AS attributes FROM main.run_variables");
  }
  const tables = new Set((db.prepare("SELECT name FROM main.sqlite_master WHERE type = 'table'").all() as { name: string }[]).map((t) => t.name));
  if (!tables.has("tags")) db.exec("CREATE TEMP TABLE tags(id INTEGER PRIMARY KEY AUTOINCREMENT, name TEXT UNIQUE NOT NULL)");
  if (!tables.has("variable_tags")) {
    db.exec("CREATE TEMP TABLE variable_tags(variable_name TEXT NOT NULL, tag_id INTEGER NOT NULL, PRIMARY KEY (variable_name, tag_id))");
  }
}
