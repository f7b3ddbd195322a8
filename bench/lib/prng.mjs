/** A deterministic PRNG (mulberry32) and helpers, so every run generates the same articles and queries. */

export function mulberry32(seed) {
  let a = seed >>> 0;
  return function next() {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export const pick = (rnd, list) => list[Math.floor(rnd() * list.length)];

/** Index in 0..n-1 with a Zipf-like skew (s ≈ 1): a few words are common, most are rare, as in real text. */
export function zipfIndex(rnd, n) {
  // Inverse of the continuous approximation of the harmonic CDF: rank ≈ n^u.
  return Math.min(n - 1, Math.floor(Math.pow(n + 1, rnd()) - 1));
}
