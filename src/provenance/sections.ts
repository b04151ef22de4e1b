/**
 * The sections of a provenance record, in one table (see record.ts). To record something more per attempt (the
 * calibration constants a job used, say), add one collector here: `{ name, when: "end", collect: (info) => … }`,
 * reading what it needs by `info.processingId` / proposal / run.
 */
import { hostname, userInfo } from "node:os";
import { damnitVersion } from "../version.js";
import { contextSection } from "./context-files.js";
import { inputsSection } from "./input-files.js";
import { interpreterSection } from "./interpreter.js";
import type { SectionCollector } from "./record.js";

function user(): string {
  try {
    return userInfo().username;
  } catch {
    return String(process.getuid?.() ?? "unknown");
  }
}

export const PROVENANCE_SECTIONS: readonly SectionCollector[] = [
  { name: "damnit", when: "start", collect: () => ({ version: damnitVersion(), node: process.version }) },
  {
    name: "job",
    when: "start",
    collect: (info) => ({
      data: info.data,
      cluster: info.cluster,
      mock: info.mock,
      match: info.match,
      variables: info.variables,
      host: hostname(),
      user: user(),
      pid: process.pid,
      slurmJobId: process.env.SLURM_JOB_ID ?? null,
    }),
  },
  { name: "context", when: "start", collect: (info) => contextSection(info.dbDir, info.contextFile) },
  {
    name: "interpreter",
    when: "start",
    collect: (info) => (info.contextFile.endsWith(".py") ? interpreterSection(info.contextPython, info.dbDir) : { node: process.execPath, version: process.version }),
  },
  { name: "inputs", when: "start", collect: (info) => inputsSection(info.proposal, info.run, info.data, { mock: info.mock, dataRoot: info.dataRoot }) },
  { name: "lookups", when: "end", collect: (info) => (info.lookups ? info.lookups.served() : { configured: false, served: [] }) },
];
