/**
 * `max_diff`, which drives the table's default bold highlighting: for numeric data with more than one element,
 * |nanmax − nanmin| (booleans: 1 if both values occur, else 0). None for scalars, strings and all-NaN data.
 */
export function maxDiff(values: ArrayLike<number | bigint>, opts: { bool?: boolean } = {}): number | null {
  if (values.length <= 1) return null;
  if (opts.bool) {
    let sawTrue = false;
    let sawFalse = false;
    for (let i = 0; i < values.length; i++) {
      if (Number(values[i])) sawTrue = true;
      else sawFalse = true;
    }
    return sawTrue && sawFalse ? 1 : 0;
  }
  let min = Infinity;
  let max = -Infinity;
  for (let i = 0; i < values.length; i++) {
    const v = Number(values[i]);
    if (Number.isNaN(v)) continue;
    if (v < min) min = v;
    if (v > max) max = v;
  }
  return min === Infinity ? null : Math.abs(max - min);
}
