/** Small statistics helpers: nearest-rank percentiles over a sample, and number formatting for the tables. */

/** Nearest-rank percentile (p in 0..100) of an array of numbers; the array is not modified. */
export function percentile(values, p) {
  if (!values.length) return NaN;
  const sorted = Float64Array.from(values).sort();
  const rank = Math.min(sorted.length, Math.max(1, Math.ceil((p / 100) * sorted.length)));
  return sorted[rank - 1];
}

export const median = (values) => percentile(values, 50);
export const mean = (values) => values.reduce((a, b) => a + b, 0) / values.length;

/** A number with `digits` significant-ish decimals, for tables. */
export function fmt(n, digits = 1) {
  if (!Number.isFinite(n)) return String(n);
  return n.toLocaleString('en-US', { minimumFractionDigits: digits, maximumFractionDigits: digits });
}
