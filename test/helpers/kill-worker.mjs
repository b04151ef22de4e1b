// Writes many runs in one transaction, announcing when it is inside it, so a test can kill it mid-write.
// argv: <dir>
import { RunDatabase } from "../../dist/src/db/index.js";

const db = await RunDatabase.open(process.argv[2]);
const runs = Array.from({ length: 2000 }, (_, i) => ({
  proposal: 1234,
  run: 1000 + i,
  values: Object.fromEntries(Array.from({ length: 50 }, (_, v) => [`late_${v}`, { value: i + v / 100 }])),
}));
// Announce and then keep writing: the parent kills us while the transaction is open.
process.stdout.write("writing\n");
for (;;) db.setVariablesForRuns(runs, { provenance: "context.py" });
