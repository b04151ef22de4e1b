import type { Migration } from "./migration.js";

/**
 * The long-narrow baseline: `run_info` + `run_variables` instead of v0's one wide `runs` table. The statements are
 * DAMNIT's, character for character, so `.schema` of our databases equals DAMNIT's. The views are placeholders until
 * the first variable exists.
 */
export const v1Baseline: Migration = {
  version: 1,
  name: "v1-baseline",
  description: "run_info, run_variables, metameta, variables, time_comments, placeholder views",
  up(db) {
    db.exec(`CREATE TABLE IF NOT EXISTS run_info(
    proposal,
    run,
    start_time,
    added_at
)`);
    db.exec(`CREATE UNIQUE INDEX IF NOT EXISTS proposal_run ON run_info (proposal, run)`);
    db.exec(`CREATE TABLE IF NOT EXISTS run_variables(
    proposal,
    run,
    name,
    version,
    value,
    timestamp,
    max_diff,
    provenance,
    summary_type,
    summary_method
)`);
    db.exec(`CREATE UNIQUE INDEX IF NOT EXISTS variable_version
    ON run_variables (proposal, run, name, version)`);
    db.exec(`CREATE VIEW IF NOT EXISTS runs AS SELECT * FROM run_info`);
    db.exec(`CREATE VIEW IF NOT EXISTS max_diffs AS SELECT proposal, run FROM run_info`);
    db.exec(`CREATE TABLE IF NOT EXISTS metameta(
    key PRIMARY KEY NOT NULL,
    value
)`);
    db.exec(`CREATE TABLE IF NOT EXISTS variables(
    name TEXT PRIMARY KEY NOT NULL,
    type TEXT,
    title TEXT,
    description TEXT,
    attributes TEXT
)`);
    db.exec(`CREATE TABLE IF NOT EXISTS time_comments(
    timestamp,
    comment
)`);
  },
};
