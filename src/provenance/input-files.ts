/**
 * Provenance section `inputs`: the run's files as the job found them (raw, proc or both, as the job's data kind
 * says), each by path below the proposal directory, size and modification time (epoch seconds). Contents are not
 * hashed: a run is many gigabytes, and its files are written once by the DAQ; a size or time that changed says
 * the data did. A mock run has none.
 */
import { readdirSync, statSync } from "node:fs";
import { join, relative } from "node:path";
import type { DataKind } from "../core/data-kind.js";
import { dataRoot as defaultDataRoot, findProposalDirectory, runDirectory } from "../exdf/open-run.js";

export interface InputFile {
  readonly path: string;
  readonly size: number;
  readonly mtime: number;
}

export function inputsSection(proposal: number, run: number, data: DataKind, opts: { mock: boolean; dataRoot?: string }): Record<string, unknown> {
  if (opts.mock) return { mock: true, files: [] };
  const proposalDir = findProposalDirectory(proposal, opts.dataRoot ?? defaultDataRoot());
  const kinds: Array<"raw" | "proc"> = data === "all" ? ["raw", "proc"] : [data];
  const files: InputFile[] = [];
  const missing: string[] = [];
  for (const kind of kinds) {
    const dir = runDirectory(proposalDir, kind, run);
    let names: string[];
    try {
      names = readdirSync(dir).sort();
    } catch {
      missing.push(relative(proposalDir, dir));
      continue;
    }
    for (const name of names) {
      try {
        const s = statSync(join(dir, name));
        if (s.isFile()) files.push({ path: relative(proposalDir, join(dir, name)), size: s.size, mtime: s.mtimeMs / 1000 });
      } catch {
        // vanished meanwhile
      }
    }
  }
  return { proposalDir, files, ...(missing.length > 0 ? { missing } : {}) };
}
