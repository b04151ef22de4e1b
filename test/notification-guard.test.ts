/** Poison notifications are refused with a short reason before they can hurt: size, nesting, encoding, numbers. */
import { describe, expect, it } from "vitest";
import { NOTIFICATION_LIMITS, parseNotification, PROFILES } from "../src/listener/notification.js";

const profile = PROFILES.maxwell!;
const parse = (value: Buffer | string) => parseNotification("test.r2d2", value, profile);
const reasonOf = (value: Buffer | string): string => {
  const parsed = parse(value);
  if (parsed.ok) throw new Error("parsed, but should not have");
  return parsed.reason;
};

describe("the notification guard", () => {
  it("refuses deep nesting before parsing, without overflowing the stack", () => {
    const deep = `{"event":"migration_complete","proposal":${"[".repeat(5000)}1${"]".repeat(5000)},"run":1}`;
    expect(reasonOf(deep)).toBe(`JSON nested deeper than ${NOTIFICATION_LIMITS.maxDepth} levels`);
    const inString = JSON.stringify({ event: "migration_complete", proposal: 1, run: 2, note: "[".repeat(5000) });
    expect(parse(inString)).toEqual({ ok: true, notification: { proposal: 1, run: 2, kind: "raw" } });
  });

  it("refuses huge messages, invalid UTF-8, and binary data", () => {
    expect(reasonOf("x".repeat(5_000_000))).toBe("message of 5000000 bytes is too large to be a notification");
    expect(reasonOf(Buffer.from([0x7b, 0x22, 0xff, 0xfe, 0x22, 0x7d]))).toBe("not UTF-8 text");
    expect(reasonOf(Buffer.from([0x00, 0x01, 0x02]))).toMatch(/^not JSON \(/);
  });

  it("quotes at most a short prefix of a bad field", () => {
    const long = "9".repeat(60_000);
    const reason = reasonOf(JSON.stringify({ event: "migration_complete", proposal: `x${long}`, run: 1 }));
    expect(reason.length).toBeLessThan(200);
    expect(reason).toBe(`migration_complete: 'proposal' is "x${"9".repeat(NOTIFICATION_LIMITS.quoteChars - 2)}… (60003 characters), not a whole number`);
    expect(reasonOf(JSON.stringify({ event: "migration_complete", proposal: [[1, 2]], run: 1 }))).toBe(
      "migration_complete: 'proposal' is an array of 1 item, not a whole number",
    );
  });

  it("refuses numbers that are not exact whole numbers", () => {
    for (const proposal of ["9007199254740993", "1e300", "1.5", "-3", "١٢٣"]) {
      const raw = `{"event":"migration_complete","proposal":${/^[\d.e-]+$/.test(proposal) ? proposal : JSON.stringify(proposal)},"run":1}`;
      expect(parse(raw).ok, proposal).toBe(false);
    }
    expect(parse(`{"event":"migration_complete","proposal":"1234","run":7}`)).toEqual({ ok: true, notification: { proposal: 1234, run: 7, kind: "raw" } });
  });
});
