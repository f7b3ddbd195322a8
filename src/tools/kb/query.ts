/**
 * From what an employee typed to what the KB searches, for every KB adapter: words (English function words
 * dropped), phrases of the IT vocabulary file expanded to their synonyms, and misspelt words corrected against
 * the KB's own words. The result is a list of concepts, each a list of alternatives (phrases of one or more
 * words); an adapter writes them in its own query language, never parsing user text as syntax.
 */
import { correct, correctable, correctionPrefix } from './spell.js';
import { fold, type Synonyms, words } from './synonyms.js';

/**
 * English function words and the contractions people type without an apostrophe: they match nearly every
 * article and add next to nothing to BM25, but scoring every match is what a query costs. Dropped unless the
 * query has nothing else.
 */
const STOPWORDS = new Set(
  ('a an and are as at be been but by can cannot could did do does doing for from had has have having how i if in into is it its ' +
    'me my no not of on or our so than that the their them then there these they this those to too up us was we were what when ' +
    'where which while who why will with would you your ' +
    "cant wont dont doesnt didnt isnt im ive id s t am any anymore just now please still myself " +
    'isn don doesn didn won wasn aren couldn shouldn wouldn haven hasn ll re ve d').split(' '),
);

export type Phrase = string[];
/** One way of saying a concept: the words typed weigh 1, a synonym SYNONYM_WEIGHT, a spelling correction less. */
export interface Alternative {
  words: Phrase;
  weight: number;
}
export type Concept = Alternative[];

export const SYNONYM_WEIGHT = 0.8;
export const CORRECTION_WEIGHT = 0.6;

/** How the adapter tells the planner what its index holds (for spelling correction). */
export interface Lexicon {
  /** Does any article hold this word (as the index matches it, stemmed)? */
  has(word: string): boolean;
  /** The KB's words (as written, unstemmed) starting with `prefix`, and how many articles hold each. */
  wordsStartingWith(prefix: string): Iterable<{ term: string; n: number }>;
  /** Optional memo of corrections: `find` computes the correction of `word` when the adapter has none kept. */
  corrected?(word: string, find: () => string | undefined): string | undefined;
}

/** At most this many alternatives in all: a long query stays one bounded index search. */
export const MAX_ALTERNATIVES = 32;

export function planQuery(query: string, syn: Synonyms, lex?: Lexicon): Concept[] {
  const toks = words(query).slice(0, 64);
  const concepts: Concept[] = [];
  const lookup = (ws: string[]) => syn.alternatives.get(ws.map(fold).join(' '));
  const onlyStop = toks.every((t) => STOPWORDS.has(t));
  for (let i = 0; i < toks.length; ) {
    // The longest vocabulary entry that starts here ("locked out" before "locked").
    let alts: readonly Phrase[] | undefined;
    let n = Math.min(syn.longest, toks.length - i);
    for (; n >= 1; n--) if ((alts = lookup(toks.slice(i, i + n)))) break;
    if (alts) {
      concepts.push(alts.map((p, k) => ({ words: [...p], weight: k === 0 ? 1 : SYNONYM_WEIGHT })));
      i += n;
      continue;
    }
    const w = toks[i++]!;
    if (STOPWORDS.has(w) && !onlyStop) continue;
    // A word no article holds may be misspelt: its correction is searched too (not expanded: a wrong guess
    // at a real word, "nagging" read as "lagging", must not pull in a whole group).
    const fix = () => correct(w, lex!.wordsStartingWith(correctionPrefix(w)));
    const fixed = lex && correctable(w) && !lex.has(w) ? (lex.corrected ? lex.corrected(w, fix) : fix()) : undefined;
    concepts.push([{ words: [w], weight: 1 }, ...(fixed ? [{ words: [fixed], weight: CORRECTION_WEIGHT }] : [])]);
  }
  return bounded(concepts);
}

/** Drops repeated alternatives and keeps the first MAX_ALTERNATIVES (earlier concepts first). */
function bounded(concepts: Concept[]): Concept[] {
  const seen = new Set<string>();
  const out: Concept[] = [];
  let total = 0;
  for (const c of concepts) {
    const kept = c.filter((a) => {
      const k = a.words.join(' ');
      if (seen.has(k) || total >= MAX_ALTERNATIVES) return false;
      seen.add(k);
      total += 1;
      return true;
    });
    if (kept.length) out.push(kept);
  }
  return out;
}
