// Commits one batch, then writes more inside a transaction that it never finishes, announcing when it is inside it,
// so that a test can kill it mid-write. argv: <dir>
import { RunDatabase } from "../../dist/src/db/index.js";

const db = await RunDatabase.open(process.argv[2]);
const batch = (offset) =>
  Array.from({ length: 2000 }, (_, i) => ({
    proposal: 1234,
    run: offset + i,
    values: Object.fromEntries(Array.from({ length: 50 }, (_, v) => [`late_${v}`, { value: i + v / 100 }])),
  }));
db.setVariablesForRuns(batch(1000), { provenance: "context.py" }); // committed
db.sqlite.exec("BEGIN IMMEDIATE");
process.stdout.write("writing\n");
// Inside the open transaction each call is a savepoint; the parent kills us while we are at it.
for (let offset = 10_000; ; offset += 2000) db.setVariablesForRuns(batch(offset), { provenance: "context.py" });
