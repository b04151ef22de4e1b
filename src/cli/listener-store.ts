/** What the `damnit listener …` commands share: the `-C dir` option, opening the store for one command, times as shown. */
import type { Argv } from "yargs";
import { ListenerStore } from "../listener/store/index.js";

export interface DirArgs {
  dir: string;
}

export const dirOption = (y: Argv) => y.option("dir", { alias: "C", type: "string", default: ".", describe: "listener directory (holds listener.sqlite)" });

/** Run `fn` on the directory's store; `create: false` for commands that must not make one (a DamnitError if none). */
export async function withStore<T>(dir: string, opts: { create: boolean }, fn: (store: ListenerStore) => T | Promise<T>): Promise<T> {
  const store = ListenerStore.open(dir, opts);
  try {
    return await fn(store);
  } finally {
    store.close();
  }
}

/** Seconds since the epoch as `YYYY-MM-DD HH:MM:SS` (UTC), as the listener's listings show times. */
export function listingTime(seconds: number): string {
  return new Date(seconds * 1000).toISOString().replace("T", " ").slice(0, 19);
}
