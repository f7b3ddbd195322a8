/**
 * Second-stage ranking of the index's best candidates, for every KB adapter that can hand over their text:
 * BM25F (each field's term frequency weighted and length-normalised, then saturated once) summed over the
 * query's concepts, where a concept counts once however many of its synonyms an article holds ("size limit",
 * "too big" and "large file" are one thing asked, not three). A synonym or a spelling correction weighs a
 * little less than the words typed (query.ts sets the weights). The first stage (FTS5 bm25 over every alternative) only picks candidates.
 */
import type { Concept, Phrase } from './query.js';
import { eachWord, fold } from './synonyms.js';

/** BM25's usual constants: term-frequency saturation and length normalisation. */
const K1 = 1.2;
const B = 0.75;

export interface FieldStats {
  /** Articles in the KB. */
  n: number;
  /** Average length (characters) of each field, in the order the candidates' fields come. */
  avgLen: readonly number[];
  /** Weight of each field (title above tags and questions above body). */
  weights: readonly number[];
}

/** Where the query's words occur in one field (folded word → token positions), and the field's length. */
interface Field {
  len: number;
  at: Map<string, Set<number>>;
}

/**
 * Only the words the query asks about are folded and kept: fold() never changes a word's first two letters,
 * so the others are skipped on those alone (a body is hundreds of words, a query a handful).
 */
function field(text: string, wanted: ReadonlySet<string>, heads: ReadonlySet<string>): Field {
  const at = new Map<string, Set<number>>();
  const low = text.toLowerCase();
  let i = 0;
  eachWord(low, (start, end) => {
    if (heads.has(low.slice(start, Math.min(end, start + 2)))) {
      const f = fold(low.slice(start, end));
      if (wanted.has(f)) {
        const l = at.get(f);
        if (l) l.add(i);
        else at.set(f, new Set([i]));
      }
    }
    i += 1;
  });
  return { len: text.length, at };
}

/** How often the phrase (folded words) occurs in the field. */
function occurrences(f: Field, p: readonly string[]): number {
  const starts = f.at.get(p[0]!);
  if (!starts) return 0;
  if (p.length === 1) return starts.size;
  let n = 0;
  for (const s of starts) if (p.every((w, k) => f.at.get(w)?.has(s + k))) n += 1;
  return n;
}

/**
 * Scores each candidate (its fields' text in `stats` order) for the concepts; `df` is how many articles hold a
 * phrase (as the index counts it). Returns the scores, in candidate order.
 */
export function scoreCandidates(
  concepts: readonly Concept[],
  candidates: readonly (readonly string[])[],
  df: (p: Phrase) => number,
  stats: FieldStats,
): number[] {
  const alts = concepts.map((c) =>
    c.map((a) => {
      const d = df(a.words);
      const idf = Math.log(1 + (stats.n - d + 0.5) / (d + 0.5));
      return { folded: a.words.map(fold), idf: idf * a.weight };
    }),
  );
  const wanted = new Set(alts.flatMap((c) => c.flatMap((a) => a.folded)));
  const heads = new Set([...wanted].map((w) => w.slice(0, 2)));
  return candidates.map((texts) => {
    const fields = texts.map((t) => field(t, wanted, heads));
    let score = 0;
    for (const c of alts) {
      let best = 0;
      for (const a of c) {
        let tf = 0;
        fields.forEach((f, i) => {
          const n = occurrences(f, a.folded);
          if (n) tf += (stats.weights[i]! * n) / (1 - B + (B * f.len) / Math.max(1, stats.avgLen[i]!));
        });
        if (tf) best = Math.max(best, (a.idf * tf * (K1 + 1)) / (tf + K1));
      }
      score += best;
    }
    return score;
  });
}
