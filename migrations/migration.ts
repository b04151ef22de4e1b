import type Database from "better-sqlite3";

/**
 * One schema step. `up` runs inside a transaction that also records `version` as the new `data_format_version`,
 * so a step is either applied and recorded, or neither.
 */
export interface Migration {
  readonly version: number;
  readonly name: string;
  readonly description: string;
  up(db: Database.Database): void;
}
