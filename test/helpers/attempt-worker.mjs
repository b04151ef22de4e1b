// One of several processes noting attempts of the same run at once (see bookkeeping.test.ts).
// argv: <db dir> <worker index> <attempts>
import { RunDatabase } from "../../dist/src/db/index.js";
import { noteAttempt } from "../../dist/src/bookkeeping/attempts.js";

const [dir, worker, count] = process.argv.slice(2).map((a, i) => (i === 0 ? a : Number(a)));
const db = await RunDatabase.open(dir);
for (let i = 0; i < count; i++) {
  const processingId = `w${worker}-${i}`;
  await noteAttempt(db, { proposal: 1234, run: 7, processingId, outcome: "submitting", origin: "cli", data: "raw" });
  await noteAttempt(db, { proposal: 1234, run: 7, processingId, outcome: "finished" });
}
db.close();
