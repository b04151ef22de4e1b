/** "Did you mean …": the known names closest to a mistyped one. */

function editDistance(a: string, b: string): number {
  const prev = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    let diagonal = prev[0]!;
    prev[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const above = prev[j]!;
      prev[j] = Math.min(above + 1, prev[j - 1]! + 1, diagonal + (a[i - 1] === b[j - 1] ? 0 : 1));
      diagonal = above;
    }
  }
  return prev[b.length]!;
}

/** Up to `limit` names, best first: case-insensitive containment, then small edit distance. */
export function closeNames(wanted: string, known: Iterable<string>, limit = 3): string[] {
  const w = wanted.toLowerCase();
  const scored: Array<[number, string]> = [];
  for (const name of known) {
    const n = name.toLowerCase();
    const distance = n.includes(w) || w.includes(n) ? 0 : editDistance(w, n);
    if (distance <= Math.max(2, Math.floor(w.length / 3))) scored.push([distance, name]);
  }
  return scored.sort((a, b) => a[0] - b[0] || a[1].localeCompare(b[1])).slice(0, limit).map(([, name]) => name);
}

/** " (did you mean X or Y?)", or "" when nothing is close. */
export function didYouMean(wanted: string, known: Iterable<string>): string {
  const names = closeNames(wanted, known);
  if (names.length === 0) return "";
  return ` (did you mean ${names.slice(0, -1).join(", ")}${names.length > 1 ? " or " : ""}${names.at(-1)}?)`;
}
