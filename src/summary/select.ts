/** Order statistics without sorting: the k-th smallest value of an array, in place, in linear time. */

/**
 * Rearrange `a[lo..hi]` so that `a[k]` holds the value it would have if that range were sorted, everything before
 * it is ≤ it and everything after it is ≥ it (Hoare's FIND with a median-of-three pivot). Returns `a[k]`.
 */
export function selectInPlace(a: Float64Array, k: number, lo: number, hi: number): number {
  while (hi > lo) {
    const mid = (lo + hi) >>> 1;
    // Median of three, which also keeps sorted and reverse-sorted input linear.
    if (a[mid]! < a[lo]!) swap(a, mid, lo);
    if (a[hi]! < a[lo]!) swap(a, hi, lo);
    if (a[hi]! < a[mid]!) swap(a, hi, mid);
    const pivot = a[mid]!;
    let i = lo;
    let j = hi;
    while (i <= j) {
      while (a[i]! < pivot) i++;
      while (a[j]! > pivot) j--;
      if (i <= j) {
        swap(a, i, j);
        i++;
        j--;
      }
    }
    if (k <= j) hi = j;
    else if (k >= i) lo = i;
    else break; // a[j+1 .. i-1] all equal the pivot
  }
  return a[k]!;
}

function swap(a: Float64Array, i: number, j: number): void {
  const t = a[i]!;
  a[i] = a[j]!;
  a[j] = t;
}
