import type { ArgumentsCamelCase, Argv, CommandModule } from "yargs";
import { DamnitError } from "../../core/errors.js";
import { SYNTH_CYCLE, SYNTH_FORMATS, SYNTH_INSTRUMENT, SYNTH_SIZES, type SynthFormat, type SynthSize } from "../../synth/layout.js";
import { checkRunTargets, runDirectory, synthRunFileNames, writeSyntheticRun } from "../../synth/write-run.js";
import { progressBar } from "../progress.js";

interface Args {
  root: string;
  proposal: number;
  runs: number;
  firstRun: number;
  size: SynthSize;
  format: SynthFormat;
  proc: boolean;
  legacyIndex: boolean;
  partialSource: boolean;
  instrument: string;
  cycle: string;
  force: boolean;
}

function wholeNumber(name: string, value: number, min: number, max: number): number {
  if (!Number.isInteger(value) || value < min || value > max) {
    throw new DamnitError("BAD_ARGUMENT", `--${name} must be a whole number from ${min} to ${max}, not ${value}`);
  }
  return value;
}

export const synthCommand: CommandModule<object, Args> = {
  command: "synth <root>",
  describe: "Write synthetic European XFEL runs (EXDF HDF5, raw and proc) with known values, for tests and benchmarks",
  builder: (y: Argv) =>
    y
      .positional("root", { type: "string", demandOption: true, describe: "data root; runs go to <root>/<instrument>/<cycle>/p<proposal>/{raw,proc}/r<run>" })
      .option("proposal", { type: "number", demandOption: true, describe: "proposal number" })
      .option("runs", { type: "number", demandOption: true, describe: "how many runs" })
      .option("first-run", { type: "number", default: 1, describe: "number of the first run" })
      .option("size", { type: "string", choices: SYNTH_SIZES, default: "small", describe: "small (tests), medium (≈ 275 MB, like a real small run), large (200 MiB per module)" })
      .option("format", { type: "string", choices: SYNTH_FORMATS, default: "1.2", describe: "EXDF format version" })
      .option("proc", { type: "boolean", default: true, describe: "also write the corrected proc/ run (--no-proc to skip)" })
      .option("legacy-index", { type: "boolean", default: false, describe: "detector modules use the old first/last/status index" })
      .option("partial-source", { type: "boolean", default: false, describe: "add a device that is only in the second DA01 sequence file" })
      .option("instrument", { type: "string", default: SYNTH_INSTRUMENT, describe: "instrument directory" })
      .option("cycle", { type: "string", default: SYNTH_CYCLE, describe: "cycle directory" })
      .option("force", { type: "boolean", default: false, describe: "replace existing run directories" })
      .example("$0 synth /tmp/data --proposal 1234 --runs 3", "three small runs of proposal 1234") as unknown as Argv<Args>,
  handler: async (argv: ArgumentsCamelCase<Args>) => {
    const proposal = wholeNumber("proposal", argv.proposal, 0, 999_999);
    const runs = wholeNumber("runs", argv.runs, 1, 10_000);
    const firstRun = wholeNumber("first-run", argv.firstRun, 0, 9999);
    if (firstRun + runs - 1 > 9999) throw new DamnitError("BAD_ARGUMENT", `runs ${firstRun}-${firstRun + runs - 1} go past run 9999`);
    const runNumbers = Array.from({ length: runs }, (_, i) => firstRun + i);

    // Refuse before writing anything, rather than after some runs are done.
    const targets = runNumbers.flatMap((run) =>
      (argv.proc ? (["raw", "proc"] as const) : (["raw"] as const)).map((kind) => runDirectory(argv.root, argv.instrument, argv.cycle, proposal, run, kind)),
    );
    checkRunTargets(targets, argv.force);

    const perRun = Object.values(synthRunFileNames(firstRun, argv.size, argv.proc)).flat().length;
    const total = perRun * runs;
    let done = 0;
    let bytes = 0;
    const started = Date.now();
    const progress = progressBar("Writing files");
    const lines: string[] = [];
    try {
      for (const run of runNumbers) {
        const result = await writeSyntheticRun({
          root: argv.root,
          proposal,
          run,
          size: argv.size,
          format: argv.format,
          proc: argv.proc,
          legacyIndex: argv.legacyIndex,
          partialSource: argv.partialSource,
          instrument: argv.instrument,
          cycle: argv.cycle,
          overwrite: argv.force,
          onFile: () => progress.update(++done, total),
        });
        bytes += result.bytes;
        lines.push(`Run ${run}: raw ${result.rawDir}` + (result.procDir ? `, proc ${result.procDir}` : ""));
      }
    } finally {
      progress.finish();
    }
    for (const line of lines) console.log(line);
    const seconds = (Date.now() - started) / 1000;
    console.log(`Wrote ${done} files, ${(bytes / 1e6).toFixed(1)} MB in ${seconds.toFixed(1)} s`);
  },
};
