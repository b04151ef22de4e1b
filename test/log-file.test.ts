/** damnit.log rotates by size, keeps a bounded number of old files, and loses no line across a rotation. */
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { pino } from "pino";
import { describe, expect, it } from "vitest";
import { rotatingLogFile } from "../src/log-file.js";
import { tempDir } from "./helpers/tmp.js";

describe("the listener's log file", () => {
  it("rotates at the size limit, keeps `backups` old files, and every line of the newest ones exactly once", () => {
    const file = join(tempDir(), "damnit.log");
    writeFileSync(file, "x".repeat(500) + "\n"); // an existing log counts towards the limit
    const logger = pino({ base: null, timestamp: false }, rotatingLogFile(file, { maxBytes: 4000, backups: 2 }));
    for (let i = 0; i < 300; i++) logger.info({ i }, "line");
    expect(existsSync(`${file}.3`)).toBe(false);
    const parts = [`${file}.2`, `${file}.1`, file].map((f) => readFileSync(f, "utf8"));
    for (const part of parts.slice(0, 2)) expect(Buffer.byteLength(part)).toBeGreaterThanOrEqual(4000);
    for (const part of parts) expect(Buffer.byteLength(part)).toBeLessThan(4000 + 100);
    const numbers = parts
      .join("")
      .split("\n")
      .filter((l) => l.startsWith("{"))
      .map((l) => (JSON.parse(l) as { i: number }).i);
    // The newest lines, in order, none twice, none missing up to the last one written.
    expect(numbers.at(-1)).toBe(299);
    expect(numbers).toEqual(Array.from({ length: numbers.length }, (_, k) => 300 - numbers.length + k));
  });
});
