/** Debian's Chromium for browser tests (puppeteer-core, no browser download); REQUIRE_CHROMIUM=1 makes its absence fail. */
import { existsSync } from "node:fs";

export const CHROMIUM = "/usr/bin/chromium";

export function chromiumAvailable(): boolean {
  if (existsSync(CHROMIUM)) return true;
  if (process.env.REQUIRE_CHROMIUM === "1") throw new Error(`REQUIRE_CHROMIUM=1 but ${CHROMIUM} is missing (apt-get install chromium)`);
  return false;
}
