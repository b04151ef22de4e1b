/**
 * A strict reader of the Prometheus text exposition format (version 0.0.4) for tests: every line is a `# HELP`, a
 * `# TYPE` or a sample `name{label="value",…} number`, every sample belongs to a family whose TYPE came first
 * (histograms: `_bucket`, `_sum`, `_count`), label values are properly escaped. Throws naming the line otherwise.
 */
export interface Sample {
  readonly name: string;
  readonly labels: Readonly<Record<string, string>>;
  readonly value: number;
}

export interface Exposition {
  readonly types: ReadonlyMap<string, string>;
  readonly samples: readonly Sample[];
}

const NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/;
const SAMPLE = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s+(\S+)(?:\s+-?\d+)?$/;
const LABEL = /\s*([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\\n]|\\[\\"n])*)"\s*(?:,|$)/y;

export function parsePrometheus(text: string): Exposition {
  const types = new Map<string, string>();
  const samples: Sample[] = [];
  text.split("\n").forEach((line, i) => {
    const where = `line ${i + 1} '${line}'`;
    if (line.trim() === "") return;
    if (line.startsWith("# HELP ")) {
      if (!NAME.test(line.slice(7).split(" ")[0]!)) throw new Error(`bad HELP name at ${where}`);
      return;
    }
    if (line.startsWith("# TYPE ")) {
      const [name, type] = line.slice(7).split(" ");
      if (!NAME.test(name ?? "") || !["counter", "gauge", "histogram", "summary", "untyped"].includes(type ?? "")) throw new Error(`bad TYPE at ${where}`);
      types.set(name!, type!);
      return;
    }
    if (line.startsWith("#")) return;
    const m = SAMPLE.exec(line);
    if (!m) throw new Error(`not a sample: ${where}`);
    const [, name, labelText, valueText] = m;
    const family = [name!, name!.replace(/_(bucket|sum|count)$/, "")].find((f) => types.has(f));
    if (!family) throw new Error(`sample of a family with no TYPE before it: ${where}`);
    const labels: Record<string, string> = {};
    if (labelText) {
      LABEL.lastIndex = 0;
      while (LABEL.lastIndex < labelText.length) {
        const start = LABEL.lastIndex;
        const l = LABEL.exec(labelText);
        if (!l || LABEL.lastIndex === start) throw new Error(`bad labels at ${where}`);
        labels[l[1]!] = l[2]!.replace(/\\n/g, "\n").replace(/\\(["\\])/g, "$1");
      }
    }
    const value = valueText === "+Inf" ? Infinity : valueText === "-Inf" ? -Infinity : Number(valueText);
    if (Number.isNaN(value) && valueText !== "NaN") throw new Error(`bad value at ${where}`);
    samples.push({ name: name!, labels, value });
  });
  return { types, samples };
}

/** The value of the one sample with this name and these labels (throws unless exactly one). */
export function sampleValue(e: Exposition, name: string, labels: Record<string, string> = {}): number {
  const found = e.samples.filter((s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v) && Object.keys(s.labels).length === Object.keys(labels).length);
  if (found.length !== 1) throw new Error(`${found.length} samples ${name}${JSON.stringify(labels)}`);
  return found[0]!.value;
}
