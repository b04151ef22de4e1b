/** A plain text table for terminals: aligned columns, long cells cut with an ellipsis. */

export function renderTable(header: readonly string[], rows: readonly (readonly string[])[], maxCell = 32): string {
  const cut = (s: string) => (s.length > maxCell ? s.slice(0, maxCell - 1) + "…" : s);
  const cells = [header.map(cut), ...rows.map((r) => r.map(cut))];
  const widths = header.map((_, i) => Math.max(...cells.map((r) => (r[i] ?? "").length)));
  const line = (r: readonly string[]) =>
    r.map((c, i) => (/^-?[\d.]+(e[+-]?\d+)?( \S+)?$/i.test(c) ? c.padStart(widths[i]!) : c.padEnd(widths[i]!))).join("  ").trimEnd();
  return [line(cells[0]!), widths.map((w) => "-".repeat(w)).join("  "), ...cells.slice(1).map(line)].join("\n") + "\n";
}
