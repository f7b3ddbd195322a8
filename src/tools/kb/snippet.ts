/**
 * The body excerpt kb_search shows: the window of WINDOW words holding the most of the query's words, matched
 * words marked [[…]], ' … ' where text was cut (FTS5's snippet() shape). Made here from the text the ranking
 * already holds rather than by asking the index again for each result.
 */
import { fold } from './synonyms.js';

const WINDOW = 24;

export function snippet(body: string, wanted: ReadonlySet<string>): string {
  const heads = new Set([...wanted].map((w) => w.slice(0, 2)));
  const spans: { start: number; end: number; hit: string | undefined }[] = [];
  for (const m of body.matchAll(/[\p{L}\p{N}]+/gu)) {
    const t = m[0].toLowerCase();
    // fold() keeps a word's first two letters: the rest are not folded at all.
    const f = heads.has(t.slice(0, 2)) ? fold(t) : undefined;
    spans.push({ start: m.index, end: m.index + m[0].length, hit: f !== undefined && wanted.has(f) ? f : undefined });
  }
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
