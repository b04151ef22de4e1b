import type { Migration } from "./migration.js";

/** Tags on variables. Some real v2 databases already have these tables, hence IF NOT EXISTS. */
export const v3Tags: Migration = {
  version: 3,
  name: "v3-tags",
  description: "tags and variable_tags tables",
  up(db) {
    db.exec(`CREATE TABLE IF NOT EXISTS tags(
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    name TEXT UNIQUE NOT NULL
)`);
    db.exec(`CREATE TABLE IF NOT EXISTS variable_tags(
    variable_name TEXT NOT NULL,
    tag_id INTEGER NOT NULL,
    FOREIGN KEY (variable_name) REFERENCES variables(name) ON DELETE CASCADE,
    FOREIGN KEY (tag_id) REFERENCES tags(id) ON DELETE CASCADE,
    PRIMARY KEY (variable_name, tag_id)
)`);
  },
};
