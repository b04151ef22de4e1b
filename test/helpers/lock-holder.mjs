// Holds the database's write lock (BEGIN IMMEDIATE) until told to stop or 20 s pass, like a long writer job.
// argv: <db path> <release marker path>
import Database from "better-sqlite3";
import { writeFileSync } from "node:fs";

const [path, marker] = process.argv.slice(2);
const db = new Database(path);
db.exec("BEGIN IMMEDIATE");
db.prepare("INSERT INTO time_comments (timestamp, comment) VALUES (?, ?)").run(1, "held");
process.stdout.write("locked\n");
const release = () => {
  db.exec("COMMIT");
  writeFileSync(marker, "released");
  process.exit(0);
};
process.stdin.on("data", release);
setTimeout(release, 20_000);
