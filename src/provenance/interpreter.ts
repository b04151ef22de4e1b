/**
 * Provenance section `interpreter` (Python contexts only): the database's `context_python` setting, the
 * executable it resolves to (PATH searched as the runner's spawn does, symlinks followed) and what its
 * `--version` prints. Asked once per executable and modification time in a process (a listener runs many jobs),
 * with node's execFile (no shell; execa's 260 modules would cost a job's start more than the question).
 */
import { execFile } from "node:child_process";
import { accessSync, constants, realpathSync, statSync } from "node:fs";
import { delimiter, isAbsolute, join, resolve } from "node:path";

const asked = new Map<string, string | null>();

/** The executable `command` runs (a path, or the first match on PATH), with symlinks resolved; null if none. */
export function resolveExecutable(command: string, cwd: string, path = process.env.PATH ?? ""): string | null {
  const candidates = command.includes("/") ? [isAbsolute(command) ? command : resolve(cwd, command)] : path.split(delimiter).filter(Boolean).map((d) => join(d, command));
  for (const candidate of candidates) {
    try {
      accessSync(candidate, constants.X_OK);
      if (statSync(candidate).isFile()) return realpathSync(candidate);
    } catch {
      // not here
    }
  }
  return null;
}

async function versionOf(executable: string): Promise<string | null> {
  const key = `${executable}\0${statSync(executable).mtimeMs}`;
  if (asked.has(key)) return asked.get(key)!;
  const text = await new Promise<string | null>((done) =>
    execFile(executable, ["--version"], { timeout: 20_000, encoding: "utf8" }, (err, stdout, stderr) => done(err ? null : `${stdout}${stderr}`.trim())),
  );
  asked.set(key, text);
  return text;
}

export async function interpreterSection(contextPython: string, cwd: string): Promise<Record<string, unknown>> {
  const command = contextPython || "python3";
  const executable = resolveExecutable(command, cwd);
  return { contextPython, command, executable, version: executable ? await versionOf(executable) : null };
}
