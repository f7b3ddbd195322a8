/**
 * The body excerpt kb_search shows: the window of WINDOW words holding the most of the query's words, matched
 * words marked [[…]], ' … ' where text was cut (FTS5's snippet() shape). Made here from the text the ranking
 * already holds rather than by asking the index again for each result.
 */
import { eachWord, fold } from './synonyms.js';

const WINDOW = 24;

export function snippet(body: string, wanted: ReadonlySet<string>): string {
  const heads = new Set([...wanted].map((w) => w.slice(0, 2)));
  const spans: { start: number; end: number; hit: string | undefined }[] = [];
  // Lower case once for the whole body when that keeps every offset (it does unless a letter lowers to two).
  const lower = body.toLowerCase();
  const same = lower.length === body.length;
  eachWord(body, (start, end) => {
    // fold() keeps a word's first two letters: the rest are not read at all.
    let f: string | undefined;
    if (same) {
      if (heads.has(lower.slice(start, Math.min(end, start + 2)))) f = fold(lower.slice(start, end));
    } else {
      const t = body.slice(start, end).toLowerCase();
      if (heads.has(t.slice(0, 2))) f = fold(t);
    }
    spans.push({ start, end, hit: f !== undefined && wanted.has(f) ? f : undefined });
  });
  if (!spans.length) return '';
  // The first window with the most distinct query words.
  let best = 0;
  let bestScore = -1;
  for (let s = 0; s < Math.max(1, spans.length - WINDOW + 1); s++) {
    if (s > 0 && !spans[s]!.hit) continue;
    const seen = new Set<string>();
    for (let k = s; k < Math.min(spans.length, s + WINDOW); k++) if (spans[k]!.hit) seen.add(spans[k]!.hit!);
    if (seen.size > bestScore) {
      best = s;
      bestScore = seen.size;
    }
  }
  const last = Math.min(spans.length, best + WINDOW) - 1;
  let out = best > 0 ? ' … ' : '';
  let pos = spans[best]!.start;
  for (let k = best; k <= last; k++) {
    const sp = spans[k]!;
    out += body.slice(pos, sp.start);
    out += sp.hit ? `[[${body.slice(sp.start, sp.end)}]]` : body.slice(sp.start, sp.end);
    pos = sp.end;
  }
  return last < spans.length - 1 ? `${out} … ` : out + body.slice(pos);
}
