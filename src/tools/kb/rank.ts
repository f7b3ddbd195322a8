/**
 * Second-stage ranking of the index's best candidates, for every KB adapter that can hand over their text:
 * BM25F (each field's term frequency weighted and length-normalised, then saturated once) summed over the
 * query's concepts, where a concept counts once however many of its synonyms an article holds ("size limit",
 * "too big" and "large file" are one thing asked, not three). A synonym or a spelling correction weighs a
 * little less than the words typed (query.ts sets the weights). The first stage (FTS5 bm25 over every alternative) only picks candidates.
 */
import type { Concept, Phrase } from './query.js';
import { fold, words } from './synonyms.js';

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

/** A field as folded words, with where each word occurs. */
interface Field {
  len: number;
  at: Map<string, number[]>;
  toks: string[];
}

function field(text: string): Field {
  const toks = words(text).map(fold);
  const at = new Map<string, number[]>();
  toks.forEach((t, i) => {
    const l = at.get(t);
    if (l) l.push(i);
    else at.set(t, [i]);
  });
  return { len: text.length, at, toks };
}

/** How often the phrase (folded words) occurs in the field. */
function occurrences(f: Field, p: readonly string[]): number {
  const starts = f.at.get(p[0]!);
  if (!starts) return 0;
  if (p.length === 1) return starts.length;
  return starts.filter((s) => p.every((w, k) => f.toks[s + k] === w)).length;
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
  return candidates.map((texts) => {
    const fields = texts.map(field);
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
