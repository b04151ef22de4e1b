/**
 * Compiled context files are kept per content (issue 13): the second load of an unchanged context uses the cached
 * output instead of compiling (shown by editing the cache entry: its variable is what loads), a changed context
 * misses, the cache is the user's own (0700 directory, 0600 entries), and a cache that cannot be used costs a
 * compile, never a failure.
 */
import { chmodSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { damnit } from "./helpers/cli.js";
import { tempDir } from "./helpers/tmp.js";

function variableNames(dir: string): string[] {
  const r = damnit(["read-context", dir, "--json"]);
  if (r.status !== 0) throw new Error(`read-context failed: ${r.stderr}`);
  return (JSON.parse(r.stdout) as { variables: Array<{ name: string }> }).variables.map((v) => v.name);
}

describe("the compile cache of context files", () => {
  it("serves an unchanged context from the cache, misses on a change, and is private", () => {
    const dir = tempDir("compile-cache");
    expect(damnit(["proposal", "1234", dir]).status).toBe(0);
    const context = join(dir, "context.ts");
    writeFileSync(context, `import { Variable } from "damnit/context";\nexport const first: ReturnType<typeof Variable> = Variable((run) => run.trainIds.length);\n`);
    expect(variableNames(dir)).toEqual(["first"]);

    const cache = join(dir, ".damnit-cache", `compiled-${process.getuid!()}`);
    expect(statSync(cache).mode & 0o777).toBe(0o700);
    expect(statSync(join(dir, ".damnit-cache")).mode & 0o7777).toBe(0o1777);
    const entries = readdirSync(cache);
    expect(entries).toHaveLength(1);
    const entry = join(cache, entries[0]!);
    expect(statSync(entry).mode & 0o777).toBe(0o600);

    // The next load takes the cached output: edited there, its variable is what loads.
    const compiled = readFileSync(entry, "utf8");
    expect(compiled).toMatch(/^\s+first$/m);
    writeFileSync(entry, compiled.replace(/^(\s+)first$/m, "$1first as from_cache"));
    expect(variableNames(dir)).toEqual(["from_cache"]);

    // A changed context file is compiled again.
    writeFileSync(context, `import { Variable } from "damnit/context";\nexport const second = Variable((run) => run.trainIds.length);\n`);
    expect(variableNames(dir)).toEqual(["second"]);
    expect(readdirSync(cache)).toHaveLength(2);

    // An entry others could have written is not used.
    chmodSync(entry, 0o666);
    writeFileSync(context, `import { Variable } from "damnit/context";\nexport const first: ReturnType<typeof Variable> = Variable((run) => run.trainIds.length);\n`);
    expect(variableNames(dir)).toEqual(["first"]);
  }, 60_000);

  it("a cache that cannot be made costs a compile, not a failure", () => {
    const dir = tempDir("compile-cache");
    expect(damnit(["proposal", "1234", dir]).status).toBe(0);
    writeFileSync(join(dir, "context.ts"), `import { Variable } from "damnit/context";\nexport const n = Variable((run) => run.trainIds.length);\n`);
    rmSync(join(dir, ".damnit-cache"), { recursive: true, force: true });
    writeFileSync(join(dir, ".damnit-cache"), "not a directory");
    expect(variableNames(dir)).toEqual(["n"]);
    expect(variableNames(dir)).toEqual(["n"]);
  }, 60_000);
});
