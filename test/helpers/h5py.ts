import { spawnSync } from "node:child_process";

/** Debian's h5py lives under /usr/bin/python3 only (the python3 on PATH may be another interpreter). */
const PYTHON = "/usr/bin/python3";

export function h5pyAvailable(): boolean {
  const probe = spawnSync(PYTHON, ["-c", "import h5py"], { timeout: 30_000 });
  if (probe.status === 0) return true;
  if (process.env.REQUIRE_H5PY === "1") throw new Error("REQUIRE_H5PY=1 but /usr/bin/python3 cannot import h5py (apt-get install python3-h5py)");
  return false;
}

/** Run a Python script (with h5py and json imported) and parse what it prints as JSON. */
export function runH5py(script: string, args: string[] = []): unknown {
  const result = spawnSync(PYTHON, ["-c", `import h5py, json, sys\n${script}`, ...args], { encoding: "utf8", timeout: 60_000 });
  if (result.status !== 0) throw new Error(`h5py script failed: ${result.stderr}`);
  return JSON.parse(result.stdout);
}
