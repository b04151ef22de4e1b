/**
 * The `runs` and `max_diffs` pivot views: one column per variable name, regenerated when the set of names changes.
 * The SQL has DAMNIT's shape (so its tools read our views), but groups by proposal *and* run: DAMNIT groups by run
 * only, which merges equal run numbers of different proposals into one row.
 */
import type Database from "better-sqlite3";

function sqlString(text: string): string {
  return `'${text.replaceAll("'", "''")}'`;
}

export function runsViewSql(names: readonly string[]): string {
  const columns = names.map((n) => `max(CASE WHEN name=${sqlString(n)} THEN value END) AS ${sqlString(n)}`);
  return `CREATE VIEW runs
                AS SELECT ${["run_info.proposal", "run_info.run", "start_time", "added_at", ...columns].join(", ")}
                   FROM run_variables INNER JOIN run_info ON run_variables.proposal = run_info.proposal AND run_variables.run = run_info.run
                   GROUP BY run_info.proposal, run_info.run`;
}

export function maxDiffsViewSql(names: readonly string[]): string {
  const columns = names.map((n) => `max(CASE WHEN name=${sqlString(n)} THEN max_diff END) AS ${sqlString(n)}`);
  return `CREATE VIEW max_diffs
                AS SELECT ${["proposal", "run", ...columns].join(", ")}
                   FROM run_variables
                   GROUP BY proposal, run`;
}

/** Every variable name the views must show: names with values plus declared variables. Sorted, so views are stable. */
export function variableNames(db: Database.Database): string[] {
  const rows = db
    .prepare("SELECT name FROM (SELECT DISTINCT name FROM run_variables UNION SELECT name FROM variables) ORDER BY name")
    .all() as { name: string }[];
  return rows.map((r) => r.name);
}

function storedRunsViewSql(db: Database.Database): string | undefined {
  const row = db.prepare("SELECT sql FROM sqlite_master WHERE type = 'view' AND name = 'runs'").get() as { sql: string } | undefined;
  return row?.sql;
}

/**
 * The variable names a `runs` view pivots (`… THEN value END) AS '<name>'` for each, in DAMNIT's views as in ours,
 * quoted or not). Read from the SQL rather than the view's columns, which SQLite renames when two names differ only
 * in case.
 */
function pivotedNames(sql: string | undefined): Set<string> {
  const names = new Set<string>();
  for (const m of (sql ?? "").matchAll(/THEN value END\) AS (?:'((?:[^']|'')*)'|(\w+))/g)) names.add((m[1] ?? m[2]!).replaceAll("''", "'"));
  return names;
}

/** The variable names the `runs` view shows now. */
export function runsViewNames(db: Database.Database): Set<string> {
  return pivotedNames(storedRunsViewSql(db));
}

/** Drop and recreate both views from the current names. Call inside a write transaction. */
export function rebuildViews(db: Database.Database): void {
  const names = variableNames(db);
  db.exec("DROP VIEW IF EXISTS runs");
  db.exec("DROP VIEW IF EXISTS max_diffs");
  db.exec(runsViewSql(names));
  db.exec(maxDiffsViewSql(names));
}

/**
 * Rebuild the views if some of `names` is not yet a column, or if they have DAMNIT's run-only grouping; cheap
 * enough to call after every write.
 */
export function ensureViewColumns(db: Database.Database, names: Iterable<string>): boolean {
  const sql = storedRunsViewSql(db);
  const ours = sql !== undefined && sql.includes("GROUP BY run_info.proposal, run_info.run");
  const pivoted = pivotedNames(sql);
  if (ours && [...names].every((n) => pivoted.has(n))) return false;
  rebuildViews(db);
  return true;
}
