/**
 * better-sqlite3 binds every JavaScript number as REAL. DAMNIT's tools expect INTEGER for proposals, runs, versions
 * and whole-number settings (a REAL proposal 1234.0 breaks `f"p{proposal:06d}"`), so whole numbers are bound as
 * BigInt, which better-sqlite3 binds as INTEGER.
 */
export function asSqlInteger<T>(value: T): T | bigint {
  return typeof value === "number" && Number.isSafeInteger(value) && !Object.is(value, -0) ? BigInt(value) : value;
}
