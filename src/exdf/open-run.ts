/**
 * Finding and opening runs: by directory, or by proposal and run number under the facility's data root
 * (`<root>/<instrument>/<cycle>/p<proposal:06>/<raw|proc>/r<run:04>`).
 */
import { existsSync, readdirSync, statSync } from "node:fs";
import { dirname, join } from "node:path";
import { DATA_KINDS, type DataKind } from "../core/data-kind.js";
import { DamnitError } from "../core/errors.js";
import { log } from "../log.js";
import { DataCollection, type RunProblem } from "./data-collection.js";
import { loadH5 } from "../h5/file.js";
import { RunFile, parseRunFileName } from "./run-file.js";

/** Which data of a run to open (the package's name for the data kind). */
export type DataLocation = DataKind;
export const DATA_LOCATIONS: readonly DataLocation[] = DATA_KINDS;
export const DEFAULT_DATA_ROOT = "/gpfs/exfel/exp";

/** The data root: EXTRA_DATA_DATA_ROOT (EXtra-data's variable), else XFEL_DATA_ROOT, else the facility path. */
export function dataRoot(env: NodeJS.ProcessEnv = process.env): string {
  return env.EXTRA_DATA_DATA_ROOT || env.XFEL_DATA_ROOT || DEFAULT_DATA_ROOT;
}

const isDirectory = (path: string) => {
  try {
    return statSync(path).isDirectory();
  } catch {
    return false;
  }
};

/** `<root>/<instrument>/<cycle>/p<proposal:06>`, searched over instruments and cycles. */
export function findProposalDirectory(proposal: number, root = dataRoot()): string {
  const name = proposalDirName(proposal);
  if (!isDirectory(root)) {
    throw new DamnitError("NO_RUN", `data root ${root} does not exist; set EXTRA_DATA_DATA_ROOT to where run data live`);
  }
  const found: string[] = [];
  for (const instrument of readdirSync(root).sort()) {
    const instrumentDir = join(root, instrument);
    if (!isDirectory(instrumentDir)) continue;
    for (const cycle of readdirSync(instrumentDir).sort()) {
      const candidate = join(instrumentDir, cycle, name);
      if (isDirectory(candidate)) found.push(candidate);
    }
  }
  if (found.length === 0) throw new DamnitError("NO_RUN", `proposal ${proposal} not found under ${root} (looked for */*/${name})`);
  if (found.length > 1) log().warn({ proposal, found }, `proposal ${proposal} is in several places; using ${found[0]}`);
  return found[0]!;
}

const proposalDirName = (proposal: number) => `p${String(proposal).padStart(6, "0")}`;

/** `<root>/<instrument>/<cycle>/p<proposal:06>`, where a proposal's data live on EuXFEL storage. */
export function proposalDirectory(root: string, instrument: string, cycle: string, proposal: number): string {
  return join(root, instrument, cycle, proposalDirName(proposal));
}

export function runDirectory(proposalDir: string, kind: "raw" | "proc", run: number): string {
  return join(proposalDir, kind, `r${String(run).padStart(4, "0")}`);
}

/** Open a run directory, or several (e.g. raw and proc) where later directories win for sources both hold. */
export async function openRunDirectory(dirs: string | readonly string[]): Promise<DataCollection> {
  const directories = typeof dirs === "string" ? [dirs] : [...dirs];
  const lib = await loadH5();
  const files: RunFile[] = [];
  const problems: RunProblem[] = [];
  const sourceFiles = new Map<string, RunFile[]>();
  try {
    for (const dir of directories) {
      const opened = openFilesIn(lib, dir, problems);
      files.push(...opened);
      const here = new Map<string, RunFile[]>();
      for (const f of opened) {
        for (const s of [...f.controlSources, ...f.instrumentSources.keys()]) here.set(s, [...(here.get(s) ?? []), f]);
      }
      for (const [s, list] of here) sourceFiles.set(s, list.sort(byFirstTrain));
    }
  } catch (err) {
    for (const f of files) f.close();
    throw err;
  }
  return DataCollection.fromContents({ lib, directories, files, sourceFiles, problems });
}

/** Open run `run` of `proposal`; "all" combines raw and proc, preferring proc where both have a source. */
export async function openRun(proposal: number, run: number, opts: { data?: DataLocation; root?: string } = {}): Promise<DataCollection> {
  const data = opts.data ?? "raw";
  const proposalDir = findProposalDirectory(proposal, opts.root ?? dataRoot());
  const raw = runDirectory(proposalDir, "raw", run);
  const proc = runDirectory(proposalDir, "proc", run);
  if (data === "all") {
    const dirs = [raw, proc].filter(isDirectory);
    if (dirs.length === 0) throw new DamnitError("NO_RUN", `run ${run} of proposal ${proposal} has neither raw nor proc data (${raw})`);
    return openRunDirectory(dirs);
  }
  const dir = data === "raw" ? raw : proc;
  if (!isDirectory(dir)) throw new DamnitError("NO_RUN", `run ${run} of proposal ${proposal} has no ${data} data (no directory ${dir})`);
  return openRunDirectory(dir);
}

function openFilesIn(lib: Awaited<ReturnType<typeof loadH5>>, dir: string, problems: RunProblem[]): RunFile[] {
  if (!existsSync(dir)) throw new DamnitError("NO_RUN", `no run directory at ${dir}`);
  if (!isDirectory(dir)) throw new DamnitError("NO_RUN", `${dir} is not a directory`);
  // Virtual overview files duplicate the sequence files; EXtra-data reads either, we read the sequence files.
  const names = readdirSync(dir, { withFileTypes: true })
    .filter((e) => (e.isFile() || e.isSymbolicLink()) && e.name.endsWith(".h5") && !/overview\.h5$/i.test(e.name))
    .map((e) => e.name)
    .sort();
  if (names.length === 0) throw new DamnitError("NO_RUN", `${dir} holds no run files (*.h5)`);
  const files: RunFile[] = [];
  for (const name of names) {
    try {
      files.push(RunFile.open(lib, join(dir, name)));
    } catch (err) {
      if (!(err instanceof DamnitError)) {
        for (const f of files) f.close();
        throw err;
      }
      const path = join(dir, name);
      problems.push({ path, directory: dir, aggregator: parseRunFileName(name)?.aggregator ?? null, message: err.message });
      log().warn({ file: path }, `skipping unreadable file: ${err.message}`);
    }
  }
  problems.push(...missingSequences(dir, names));
  if (files.length === 0) {
    const here = problems.filter((p) => dirname(p.path) === dir);
    const more = here.length > 1 ? ` (and ${here.length - 1} more unreadable files)` : "";
    throw new DamnitError("BAD_RUN_FILE", `no readable run file in ${dir}: ${here[0]?.message}${more}`);
  }
  return files;
}

/**
 * Sequence files absent from a numbering that has later ones (S00000, S00002 without S00001): the run was copied
 * incompletely, and its sources of that aggregator would be missing trains. Each gap is a problem, like an unreadable
 * file. (A missing *last* sequence file cannot be told from a shorter run.)
 */
function missingSequences(dir: string, names: readonly string[]): RunProblem[] {
  const byAggregator = new Map<string, { example: string; sequences: Set<number> }>();
  for (const name of names) {
    const parts = parseRunFileName(name);
    if (!parts || parts.sequence === null) continue;
    const entry = byAggregator.get(parts.aggregator) ?? { example: name, sequences: new Set<number>() };
    entry.sequences.add(parts.sequence);
    byAggregator.set(parts.aggregator, entry);
  }
  const problems: RunProblem[] = [];
  for (const [aggregator, { example, sequences }] of byAggregator) {
    const last = Math.max(...sequences);
    for (let s = 0; s < last; s++) {
      if (sequences.has(s)) continue;
      const name = example.replace(/-S\d{5}\.h5$/, `-S${String(s).padStart(5, "0")}.h5`);
      const message = `${join(dir, name)} is missing (${aggregator} has sequence files up to S${String(last).padStart(5, "0")})`;
      problems.push({ path: join(dir, name), directory: dir, aggregator, message });
      log().warn({ file: join(dir, name) }, `missing sequence file: ${message}`);
    }
  }
  return problems;
}

function byFirstTrain(a: RunFile, b: RunFile): number {
  return (a.trainIds[0] ?? Infinity) - (b.trainIds[0] ?? Infinity) || a.name.localeCompare(b.name);
}
