/**
 * Time this process spent reading run data (seconds since it started), so that a job can say where its time went:
 * reading the run's files versus computing the variables on what was read (the job's phase timings, issue 13).
 * KeyData adds to it around every read of entries; reading it costs nothing.
 */
export const readClock = { seconds: 0 };

/** Run `read` and add its duration to the clock. */
export function timedRead<T>(read: () => T): T {
  const started = performance.now();
  try {
    return read();
  } finally {
    readClock.seconds += (performance.now() - started) / 1000;
  }
}
