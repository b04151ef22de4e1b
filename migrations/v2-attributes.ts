import type { Migration } from "./migration.js";

/** Per-value display hints and error details (`units`, `bold`, `background`, `error`, `error_cls`) as JSON. */
export const v2Attributes: Migration = {
  version: 2,
  name: "v2-attributes",
  description: "run_variables.attributes column",
  up(db) {
    const columns = db.prepare("SELECT name FROM pragma_table_info('run_variables')").all() as { name: string }[];
    if (columns.length === 0) throw new Error("table run_variables is missing, so the database is damaged");
    if (columns.some((c) => c.name === "attributes")) return;
    db.exec("ALTER TABLE run_variables ADD COLUMN attributes");
  },
};
