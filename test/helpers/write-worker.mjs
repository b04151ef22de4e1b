// One of several processes writing the same database at once (see db-concurrency.test.ts).
// argv: <dir> <worker index> <runs> <variables per run>
import { RunDatabase } from "../../dist/src/db/index.js";

const [dir, worker, runs, perRun] = process.argv.slice(2).map((a, i) => (i === 0 ? a : Number(a)));
const db = await RunDatabase.open(dir);
for (let run = 1; run <= runs; run++) {
  const values = {};
  for (let v = 0; v < perRun; v++) values[`w${worker}_v${v}`] = { value: worker * 1e6 + run * 100 + v };
  db.setVariables(1234, run, values, { provenance: `worker-${worker}` });
}
db.close();
