/**
 * Spelling correction for query words no article contains ("pasword", "outlok", "recieve"): the most common
 * word of the KB one edit away (a letter dropped, added, changed, or two neighbours swapped). Only for words of
 * letters, four or more long: codes, model numbers and short words are taken as typed.
 */
const LETTERS = 'abcdefghijklmnopqrstuvwxyz';

function* edits1(w: string): Generator<string> {
  for (let i = 0; i <= w.length; i++) {
    const a = w.slice(0, i);
    const b = w.slice(i);
    if (b) yield a + b.slice(1);
    if (b.length > 1) yield a + b[1] + b[0] + b.slice(2);
    for (const c of LETTERS) {
      if (b && c !== b[0]) yield a + c + b.slice(1);
      yield a + c + b;
    }
  }
}

export const correctable = (w: string): boolean => w.length >= 4 && w.length <= 30 && /^[a-z]+$/.test(w);

/** The best replacement for `word`, given how many articles hold a word as written (`articles`), if any. */
export function correct(word: string, articles: (w: string) => number): string | undefined {
  if (!correctable(word)) return undefined;
  let best: string | undefined;
  let bestN = 0;
  for (const c of new Set(edits1(word))) {
    const n = articles(c);
    if (n > bestN || (n === bestN && n > 0 && best !== undefined && c < best)) {
      best = c;
      bestN = n;
    }
  }
  return best;
}
