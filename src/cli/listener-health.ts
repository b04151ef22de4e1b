/** What `damnit listener status` adds to supervisord's line: the listener's own report of its notification source. */
import { apiEndpoint, apiGet } from "../listener/control-api/client.js";
import type { ConsumerHealth } from "../listener/kafka-source.js";
import type { WatcherHealth } from "../listener/listener.js";
import { LATEST_STORE_VERSION, ListenerStore } from "../listener/store/index.js";

function ago(seconds: number): string {
  const s = Math.max(0, Math.round(seconds));
  if (s < 120) return `${s} s ago`;
  if (s < 7200) return `${Math.round(s / 60)} min ago`;
  return `${Math.round(s / 3600)} h ago`;
}

/** Lines describing the listener's health as it last reported it, or none without a store or a report. */
export function listenerHealthLines(dir: string, now = Date.now() / 1000): string[] {
  if (!ListenerStore.existsIn(dir)) return [];
  let store: ListenerStore;
  try {
    store = ListenerStore.open(dir, { readonly: true });
  } catch (err) {
    return [`listener store: ${(err as Error).message}`];
  }
  try {
    const lines: string[] = [];
    // A store of an older damnit (not upgraded by a look) has no health or quarantine yet.
    if (store.version < LATEST_STORE_VERSION) return [`listener store: not yet upgraded by the listener (it is when the listener starts)`];
    const kafka = store.health.get<ConsumerHealth>("kafka");
    if (kafka) {
      const h = kafka.value;
      const state = h.member ? "member of its group" : h.connected ? "connected, not (yet) a member of its group" : "not connected";
      lines.push(
        `Kafka: ${state} since ${ago(now - h.since)}; last message consumed ${h.lastConsumedAt === null ? "never" : ago(now - h.lastConsumedAt)}; ` +
          `${h.restarts} consumer restart${h.restarts === 1 ? "" : "s"}${h.lastError && !h.member ? `; last error: ${h.lastError}` : ""}`,
      );
      const stale = now - kafka.updatedAt > 30 ? " (stale: the listener has not reported for a while)" : "";
      lines.push(`  reported ${ago(now - kafka.updatedAt)} by pid ${kafka.pid}${stale}`);
    }
    const watcher = store.health.get<WatcherHealth>("watcher");
    if (watcher && (!kafka || watcher.updatedAt > kafka.updatedAt)) {
      const w = watcher.value;
      lines.push(`Watching run directories every ${w.intervalSeconds} s: last scan ${ago(now - w.lastScanAt)} (pid ${watcher.pid})${w.lastError ? `; last error: ${w.lastError}` : ""}`);
    }
    const quarantined = store.quarantine.count();
    lines.push(`Quarantined messages: ${quarantined}${quarantined > 0 ? " (damnit listener quarantine)" : ""}`);
    return lines;
  } finally {
    store.close();
  }
}

/** The running listener's statistics from its control API, or a line saying it does not answer. */
export async function listenerStatisticsLines(dir: string, now = Date.now() / 1000): Promise<string[]> {
  let endpoint;
  try {
    endpoint = apiEndpoint(dir);
  } catch (err) {
    return [`control API: ${(err as Error).message}`];
  }
  if (!endpoint) return [];
  try {
    const status = await apiGet(endpoint, "/status");
    const s = await apiGet(endpoint, "/statistics");
    const perOutcome = Object.entries((s.per_outcome ?? {}) as Record<string, number>)
      .map(([k, v]) => `${k} ${v}`)
      .join(", ");
    const last = s.last_request as { proposal: number; run: number; data: string; outcome: string } | null;
    return [
      `Control API ${endpoint.url}: ${String(status.state)}; up since ${ago(now - Number(s.process_startup_time))}`,
      `Requests: ${s.n_processed_requests} processed, ${s.n_skipped_requests} skipped, ${s.n_failed_requests} failed${perOutcome ? ` (${perOutcome})` : ""}`,
      `Last request: ${last ? `p${last.proposal} r${last.run} (${last.data}) ${last.outcome}, ${ago(now - Number(s.last_request_time))}` : "none"}`,
    ];
  } catch (err) {
    return [`Control API ${endpoint.url}: not answering (${(err as Error).message})`];
  }
}
