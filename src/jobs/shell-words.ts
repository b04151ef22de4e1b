/** Splitting a setting such as `sandbox_args` into words with POSIX shell quoting rules (no expansion of any kind). */
export function shellWords(text: string): string[] {
  const words: string[] = [];
  let word = "";
  let inWord = false;
  let quote: "'" | '"' | null = null;
  for (let i = 0; i < text.length; i++) {
    const c = text[i]!;
    if (quote === "'") {
      if (c === "'") quote = null;
      else word += c;
    } else if (quote === '"') {
      if (c === '"') quote = null;
      else if (c === "\\" && i + 1 < text.length && '"\\$`\n'.includes(text[i + 1]!)) word += text[++i];
      else word += c;
    } else if (c === "'" || c === '"') {
      quote = c;
      inWord = true;
    } else if (c === "\\" && i + 1 < text.length) {
      word += text[++i];
      inWord = true;
    } else if (/\s/.test(c)) {
      if (inWord) words.push(word);
      word = "";
      inWord = false;
    } else {
      word += c;
      inWord = true;
    }
  }
  if (quote) throw new Error(`unterminated ${quote} quote in '${text}'`);
  if (inWord) words.push(word);
  return words;
}

/** The sandbox wrapper for a proposal's user code: `<sandbox words…> <proposal> --` (spec §1.7); [] for none. */
export function sandboxWrapper(sandboxArgs: string | undefined, proposal: number): string[] {
  const words = shellWords(sandboxArgs ?? "");
  return words.length === 0 ? [] : [...words, String(proposal), "--"];
}
