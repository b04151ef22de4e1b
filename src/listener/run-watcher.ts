/**
 * The embedded default (no broker configured): find new complete runs by scanning the registered proposals'
 * `raw/` and `proc/` directories. Polling, because inotify sees nothing on the network file systems where run data
 * lives. A run directory counts as complete when it looked the same for `settleSeconds`; a run seen before is
 * offered again when its directory changes (e.g. recalibrated). When a proposal is first watched, runs that its
 * databases already hold are taken as done.
 */
import type { RunDataDirectory } from "../core/data-kind.js";
import { readdirSync, statSync } from "node:fs";
import { join } from "node:path";
import { findProposalDirectory, runDirectory } from "../exdf/open-run.js";
import type { Notification } from "./notification.js";
import type { WatcherState } from "./store/index.js";

export interface WatchOptions {
  readonly settleSeconds: number;
  /** the proposals to watch, with the data root to find each in (undefined: the default), read before every scan */
  readonly proposals: () => Array<{ proposal: number; dataRoot: string | undefined }>;
  /** whether every database of the proposal already has this run (used on the first scan of a proposal) */
  readonly known: (proposal: number, run: number) => boolean;
}

export interface WatchedRun extends Notification {
  readonly signature: string;
  readonly runDir: string;
  readonly dirMtime: number;
}

export class RunWatcher {
  private readonly proposalDirs = new Map<string, string>();
  /** directory mtime last looked at, to skip unchanged runs without reading them */
  private readonly lastMtime = new Map<string, number>();
  /** run directories seen changing, with their state and since when it has not changed */
  private readonly pending = new Map<string, { signature: string; since: number }>();

  constructor(
    /** what was seen, kept in listener.sqlite */
    private readonly state: WatcherState,
    private readonly opts: WatchOptions,
  ) {}

  /**
   * One scan: the runs that became complete (or changed) since the last one. They are not recorded as seen until
   * `seen()` is called for each, once it was handled: a listener stopped in between finds them again.
   */
  scan(now = Date.now()): WatchedRun[] {
    const ready: WatchedRun[] = [];
    for (const { proposal, dataRoot } of this.opts.proposals()) {
      const dir = this.proposalDir(proposal, dataRoot);
      if (!dir) continue;
      const first = !this.state.isWatched(proposal);
      for (const kind of ["raw", "proc"] as const) {
        for (const run of listRuns(join(dir, kind))) {
          const runDir = runDirectory(dir, kind, run);
          const found = this.check(proposal, run, kind, runDir, now, first);
          if (found) ready.push(found);
        }
      }
      if (first) this.state.markWatched(proposal, now / 1000);
    }
    return ready;
  }

  /** Record a run returned by scan() as handled. */
  seen(run: WatchedRun): void {
    this.state.recordSeen(run.proposal, run.run, run.kind, run.signature);
    this.lastMtime.set(run.runDir, run.dirMtime);
  }

  private check(proposal: number, run: number, kind: RunDataDirectory, runDir: string, now: number, first: boolean): WatchedRun | undefined {
    let dirMtime: number;
    try {
      dirMtime = statSync(runDir).mtimeMs;
    } catch {
      return undefined;
    }
    const seen = this.state.seenSignature(proposal, run, kind);
    if (seen !== undefined && this.lastMtime.get(runDir) === dirMtime) return undefined;
    const state = directoryState(runDir);
    if (!state || state.files === 0) return undefined;
    if (seen === state.signature) {
      this.lastMtime.set(runDir, dirMtime);
      return undefined;
    }
    // Already in the databases when the proposal is first watched: done before the listener looked.
    if (seen === undefined && first && this.opts.known(proposal, run)) {
      this.seen({ proposal, run, kind, signature: state.signature, runDir, dirMtime });
      return undefined;
    }
    // Complete once the directory looked the same for settleSeconds, by our clock: file times can come from
    // elsewhere (a copy that keeps them, another host's clock).
    const pending = this.pending.get(runDir);
    if (!pending || pending.signature !== state.signature) {
      this.pending.set(runDir, { signature: state.signature, since: now });
      if (this.opts.settleSeconds > 0) return undefined;
    } else if (now - pending.since < this.opts.settleSeconds * 1000) {
      return undefined;
    }
    this.pending.delete(runDir);
    return { proposal, run, kind, signature: state.signature, runDir, dirMtime };
  }

  private proposalDir(proposal: number, dataRoot: string | undefined): string | undefined {
    const key = `${proposal} ${dataRoot ?? ""}`;
    let dir = this.proposalDirs.get(key);
    if (!dir) {
      try {
        dir = findProposalDirectory(proposal, dataRoot);
        this.proposalDirs.set(key, dir);
      } catch {
        return undefined;
      }
    }
    return dir;
  }
}

/** Run numbers of the `rNNNN` directories in `dir` (partial copies such as `r0001.partial-123` are not runs). */
function listRuns(dir: string): number[] {
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch {
    return [];
  }
  return names
    .map((n) => /^r(\d{4,})$/.exec(n))
    .filter((m): m is RegExpExecArray => m !== null)
    .map((m) => Number(m[1]))
    .sort((a, b) => a - b);
}

/** Files in a run directory and a signature of their names, sizes and times. */
function directoryState(dir: string): { files: number; signature: string } | undefined {
  let names: string[];
  try {
    names = readdirSync(dir).sort();
  } catch {
    return undefined;
  }
  let files = 0;
  const parts: string[] = [];
  for (const name of names) {
    try {
      const st = statSync(join(dir, name));
      if (!st.isFile()) continue;
      files++;
      parts.push(`${name}:${st.size}:${Math.round(st.mtimeMs)}`);
    } catch {
      // removed meanwhile
    }
  }
  return { files, signature: parts.join("|") };
}
