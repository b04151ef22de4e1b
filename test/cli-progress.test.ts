import { describe, expect, it } from "vitest";
import { progressBar } from "../src/cli/progress.js";

function fakeStream(isTTY: boolean) {
  const written: string[] = [];
  return { stream: { isTTY, write: (s: string) => written.push(s) } as unknown as NodeJS.WriteStream, written };
}

describe("progress bar", () => {
  it("draws at a terminal and always shows the end", () => {
    const { stream, written } = fakeStream(true);
    const bar = progressBar("Reading", stream);
    bar.update(0, 4);
    bar.update(1, 4); // within 100 ms of the last draw: skipped
    bar.update(4, 4);
    bar.finish();
    expect(written).toEqual([`\rReading [${"-".repeat(30)}] 0/4`, `\rReading [${"#".repeat(30)}] 4/4`, "\n"]);
  });

  it("stays silent when output is not a terminal", () => {
    const { stream, written } = fakeStream(false);
    const bar = progressBar("Reading", stream);
    bar.update(1, 2);
    bar.finish();
    expect(written).toEqual([]);
  });
});
