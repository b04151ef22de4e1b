/**
 * Which Kafka brokers to use, read in one place. `DAMNIT_KAFKA_BROKERS` (host:port,...) wins; DAMNIT's
 * `AMORE_BROKER` is honoured for its update messages. `none` (or nothing configured) means no Kafka at all.
 */
export function parseBrokers(value: string | undefined | null): string[] | null {
  const text = (value ?? "").trim();
  if (text === "" || text.toLowerCase() === "none") return null;
  const brokers = text.split(/[\s,]+/).filter(Boolean);
  for (const b of brokers) {
    if (!/^[^:\s]+:\d{1,5}$/.test(b)) throw new Error(`broker address '${b}' is not host:port`);
  }
  return brokers;
}

/** Brokers for update messages: env DAMNIT_KAFKA_BROKERS, then AMORE_BROKER, then `fallback` (e.g. a setting). */
export function updateBrokers(env: NodeJS.ProcessEnv = process.env, fallback?: string): string[] | null {
  if (env.DAMNIT_KAFKA_BROKERS !== undefined) return parseBrokers(env.DAMNIT_KAFKA_BROKERS);
  if (env.AMORE_BROKER !== undefined) return parseBrokers(env.AMORE_BROKER);
  return parseBrokers(fallback);
}
