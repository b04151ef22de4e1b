/**
 * Which passes `--check-reproducible` makes for a run, from its attempts in a real provenance.sqlite: the data kind
 * that stored each variable last, one pass per kind, `--var` narrowing them, one "all" pass without records.
 */
import { describe, expect, it } from "vitest";
import { reprocessingPlan } from "../src/provenance/plan.js";
import { ProvenanceStore } from "../src/provenance/store.js";
import { tempDir } from "./helpers/tmp.js";

function attempt(store: ProvenanceStore, run: number, data: string, variables: string[]): void {
  const base = { format: 1, proposal: 1, run, processingId: `${run}-${data}-${variables.join("+")}`, startedAt: Date.now() / 1000, sections: { job: { data } } };
  const n = store.begin(base);
  store.finish({ ...base, attempt: n, variables }, "ok", undefined);
}

describe("reprocessing plan", () => {
  it("one pass per data kind that last stored a variable", () => {
    const store = ProvenanceStore.open(tempDir());
    try {
      attempt(store, 5, "raw", ["a", "b", "start_time"]);
      attempt(store, 5, "proc", ["c", "start_time"]);
      attempt(store, 5, "proc", ["b"]);
      attempt(store, 6, "raw", ["a", "b", "start_time"]);
      expect(reprocessingPlan(store, 1, 5, {})).toEqual([
        { data: "raw", variables: ["a"] },
        { data: "proc", variables: ["b", "c"] },
      ]);
      expect(reprocessingPlan(store, 1, 5, { variables: ["c", "zz"] })).toEqual([
        { data: "proc", variables: ["c"] },
        { data: "all", variables: ["zz"] },
      ]);
      expect(reprocessingPlan(store, 1, 6, {})).toEqual([{ data: "raw", variables: undefined }]);
      expect(reprocessingPlan(store, 1, 7, { variables: ["a"] })).toEqual([{ data: "all", variables: ["a"] }]);
      expect(reprocessingPlan(undefined, 1, 5, {})).toEqual([{ data: "all", variables: undefined }]);
      expect(reprocessingPlan(store, 1, 5, { match: ["x"] })).toEqual([{ data: "all" }]);
    } finally {
      store.close();
    }
  });
});
