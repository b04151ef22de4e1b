/** The newest `data_format_version` this code writes and understands (DAMNIT's current format). */
export const LATEST_FORMAT_VERSION = 4;

export const DB_FILE_NAME = "runs.sqlite";

/** DAMNIT's busy timeout: long enough for many cluster jobs writing one database over a network file system. */
export const DEFAULT_BUSY_TIMEOUT_MS = 30_000;
