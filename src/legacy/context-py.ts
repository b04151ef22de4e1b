/**
 * Reading variable metadata (title, description, summary) out of a DAMNIT Python context file without running it.
 * Used only to label variables when converting legacy databases, whose `variables` table never held them; a
 * heuristic that reads the common `@Variable(title=..., summary=...)` + `def name(run):` + docstring shape.
 */

export interface PythonVariableInfo {
  name: string;
  title?: string;
  description?: string;
  summary?: string;
}

const DECORATED_DEF = /@Variable\s*(?:\(([\s\S]*?)\))?\s*\n\s*def\s+([A-Za-z_]\w*)\s*\([^)]*\)[^:]*:\s*\n([ \t]*)("""|''')?/g;
const KEYWORD_STRING = /(\w+)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|'((?:[^'\\]|\\.)*)')/g;

function unescape(text: string): string {
  return text.replace(/\\(.)/g, (_, c: string) => ({ n: "\n", t: "\t" })[c] ?? c);
}

export function readPythonContextVariables(source: string): Map<string, PythonVariableInfo> {
  const found = new Map<string, PythonVariableInfo>();
  for (const m of source.matchAll(DECORATED_DEF)) {
    const [whole, args = "", name, , quote] = m as unknown as [string, string | undefined, string, string, string | undefined];
    const info: PythonVariableInfo = { name };
    for (const kw of args.matchAll(KEYWORD_STRING)) {
      const value = unescape(kw[2] ?? kw[3] ?? "");
      if (kw[1] === "title") info.title = value;
      else if (kw[1] === "description") info.description = value;
      else if (kw[1] === "summary") info.summary = value;
    }
    if (quote && info.description === undefined) {
      const start = (m.index ?? 0) + whole.length;
      const end = source.indexOf(quote, start);
      if (end > start) info.description = source.slice(start, end).trim();
    }
    found.set(name, info);
  }
  return found;
}
