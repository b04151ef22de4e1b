/**
 * The lookup recorder of one extraction job (issue 14, item 3): started around the job's context runner when the
 * database configures upstreams (`lookup_upstreams`), sharing `<db dir>/lookups.sqlite` with the proposal's other
 * jobs, in the mode of `lookup_mode` (or the reprocess's `--replay-lookups`). A database without upstreams starts
 * nothing and costs nothing but reading the setting.
 */
import { join } from "node:path";
import type { Logger } from "pino";
import type { SettingsReader } from "../core/settings.js";
import type { MetametaSettings } from "../db/defaults.js";
import { newToken } from "../http/token.js";
import { lookupEnv, parseMode, parseUpstreamsJson, type LookupMode } from "./config.js";
import { LookupRecorder } from "./recorder.js";
import { LookupStore } from "./store.js";

export const LOOKUPS_FILE = "lookups.sqlite";

export interface JobLookups {
  /** the variables the context runner gets for this job */
  readonly env: Readonly<Record<string, string>>;
  readonly mode: LookupMode;
  /**
   * The lookups this job was served so far (its bookkeeping written first), for its provenance record: each key
   * once, with the request, the stored status and how often and whence it was served.
   */
  served(): Record<string, unknown>;
  close(): Promise<void>;
}

export interface JobLookupOptions {
  /** overrides `lookup_mode` (reprocess --replay-lookups) */
  readonly mode?: LookupMode;
  readonly processingId?: string;
}

export async function startJobLookups(
  db: { readonly dir: string; readonly settings: SettingsReader<MetametaSettings> },
  who: { readonly proposal: number; readonly run: number },
  opts: JobLookupOptions | undefined,
  logger?: Logger,
): Promise<JobLookups | undefined> {
  const upstreams = parseUpstreamsJson(db.settings.get("lookup_upstreams"), `setting lookup_upstreams in ${join(db.dir, "runs.sqlite")}`);
  if (upstreams.size === 0) return undefined;
  const mode = opts?.mode ?? parseMode(db.settings.get("lookup_mode") || "record");
  const store = mode === "passthrough" ? undefined : LookupStore.open(join(db.dir, LOOKUPS_FILE));
  const token = newToken();
  const recorder = new LookupRecorder({ mode, upstreams, store, token, usage: { processingId: opts?.processingId, proposal: who.proposal, run: who.run }, logger });
  try {
    await recorder.listen();
  } catch (err) {
    store?.close();
    throw err;
  }
  logger?.info(`Lookup recorder (${mode}) for ${[...upstreams.keys()].join(", ")} on ${recorder.url}`);
  return {
    env: lookupEnv(recorder.url, upstreams, token),
    mode,
    served: () => {
      recorder.flush();
      const base = { configured: true, mode, upstreams: [...upstreams.keys()] };
      if (!store) return { ...base, served: [] };
      const served = new Map<string, { key: string; servedFrom: Record<string, number> }>();
      for (const u of store.usageOf({ proposal: who.proposal, run: who.run, processingId: opts?.processingId ?? "" })) {
        const entry = served.get(u.key) ?? { key: u.key, servedFrom: {} };
        entry.servedFrom[u.servedFrom] = (entry.servedFrom[u.servedFrom] ?? 0) + 1;
        served.set(u.key, entry);
      }
      return {
        ...base,
        served: [...served.values()].map((e) => {
          const row = store.show(e.key);
          return { key: e.key, method: row?.method, service: row?.service, path: row?.path, query: row?.query, status: row?.status, servedFrom: e.servedFrom };
        }),
      };
    },
    close: async () => {
      await recorder.close();
      store?.close();
    },
  };
}
