/**
 * Waiting in tests for something another process does: poll `check` every `intervalMs` until it holds, failing
 * with `describe()` (what was seen) once `timeoutMs` has passed. Bounded in time, as every loop in a test must be.
 */
export const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

export async function until(check: () => boolean, timeoutMs: number, describe: () => string, intervalMs = 250): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`not reached within ${timeoutMs} ms: ${describe()}`);
    await sleep(intervalMs);
  }
}
