/**
 * Spelling correction for query words no article contains ("pasword", "outlok", "recieve"): the most common
 * word of the KB one edit away (a letter dropped, added, changed, or two neighbours swapped) among the KB's words
 * that start with the same two letters (typos there are rare, and the range is one indexed read). Only for words
 * of letters, four or more long: codes, model numbers and short words are taken as typed.
 */

export const correctable = (w: string): boolean => w.length >= 4 && w.length <= 30 && /^[a-z]+$/.test(w);

/** The first letters a correction must share with the word: the index range read for candidates. */
export const correctionPrefix = (w: string): string => w.slice(0, 2);

/** True when `a` becomes `b` by at most one edit (drop, add, change, or swap of two neighbours). */
export function withinOneEdit(a: string, b: string): boolean {
  if (Math.abs(a.length - b.length) > 1) return false;
  let i = 0;
  while (i < a.length && i < b.length && a[i] === b[i]) i++;
  if (i === a.length && i === b.length) return true;
  const ra = a.slice(i + 1);
  const rb = b.slice(i + 1);
  if (a.length === b.length) return ra === rb || (a[i] === b[i + 1] && a[i + 1] === b[i] && a.slice(i + 2) === b.slice(i + 2));
  return a.length > b.length ? ra === b.slice(i) : a.slice(i) === rb;
}

/** The best replacement for `word` among `candidates` (a word and how many articles hold it), if any. */
export function correct(word: string, candidates: Iterable<{ term: string; n: number }>): string | undefined {
  if (!correctable(word)) return undefined;
  let best: string | undefined;
  let bestN = 0;
  for (const { term, n } of candidates) {
    if (term === word || n <= 0 || !withinOneEdit(word, term)) continue;
    if (n > bestN || (n === bestN && best !== undefined && term < best)) {
      best = term;
      bestN = n;
    }
  }
  return best;
}
