/**
 * Reusable buffers for borrowed slices read straight from the file. Fresh memory costs a page fault per 4 KiB the
 * first time it is written, which on a busy node can cost more than the read itself; buffers handed back after an
 * iteration are reused by the next one (another key, or another pass), so only the first pays. At most two of at
 * most 16 MiB are kept, so a long-lived runner holds little.
 */
const MAX_POOLED = 2;
const MAX_POOLED_BYTES = 16 * 1024 * 1024;
const pool: Uint8Array[] = [];

/** A buffer of at least `bytes` (contents undefined), for one iteration; give it back with `releaseScratch`. */
export function takeScratch(bytes: number): Uint8Array {
  let best = -1;
  for (let i = 0; i < pool.length; i++) {
    if (pool[i]!.length >= bytes && (best < 0 || pool[i]!.length < pool[best]!.length)) best = i;
  }
  return best >= 0 ? pool.splice(best, 1)[0]! : new Uint8Array(bytes);
}

export function releaseScratch(buffer: Uint8Array): void {
  if (buffer.length > MAX_POOLED_BYTES) return;
  pool.push(buffer);
  // Keep the largest few: a small one would be replaced on the next large iteration anyway.
  pool.sort((a, b) => b.length - a.length);
  pool.length = Math.min(pool.length, MAX_POOLED);
}
