/** The newest `data_format_version` this code writes and understands (DAMNIT's current format). */
export const LATEST_FORMAT_VERSION = 4;

/** The oldest version that is upgraded automatically on open; v0 needs `damnit migrate v0-to-v1`. */
export const MIN_AUTO_UPGRADE_VERSION = 1;

export const DB_FILE_NAME = "runs.sqlite";

/** DAMNIT's busy timeout: long enough for many cluster jobs writing one database over a network file system. */
export const DEFAULT_BUSY_TIMEOUT_MS = 30_000;
