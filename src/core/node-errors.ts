/**
 * A type guard for Node's errors that carry a string `code` (system errors such as `ENOENT`, module resolution
 * errors such as `ERR_MODULE_NOT_FOUND`): callers compare codes through it instead of casting.
 */

/** A Node error with a string `code`, optionally exactly this one. */
export function isNodeError(err: unknown, code?: string): err is NodeJS.ErrnoException & { code: string } {
  return err instanceof Error && "code" in err && typeof err.code === "string" && (code === undefined || err.code === code);
}
