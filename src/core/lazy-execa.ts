/**
 * execa, loaded when a command is first run: it is some 260 modules, and a processing job that submits nothing to
 * Slurm should not pay for them at start (issue 13).
 */
import type { execa as Execa } from "execa";

let loaded: Promise<typeof Execa> | undefined;

export function loadExeca(): Promise<typeof Execa> {
  loaded ??= import("execa").then((m) => m.execa);
  return loaded;
}
