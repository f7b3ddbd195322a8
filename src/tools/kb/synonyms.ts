/**
 * The IT vocabulary file (kb/synonyms.yaml, versioned, editable): words and phrases employees use for the same
 * thing ("blocked" for "locked out", "team inbox" for "shared mailbox"). Adapter-neutral: it turns a query into
 * concepts, each a list of alternatives (a phrase of one or more words); the embedded KB writes them as FTS5
 * phrases, a PostgreSQL KB would write them as tsquery `<->` phrases. Expansion is applied at query time, so an
 * edited file or `kb import` of new articles needs no re-indexing.
 */
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { parse } from 'yaml';
import { z } from 'zod';
import { formatIssues } from '../../issues.js';

/** The file shipped in kb/ (beside dist/ or src/): used until `kb import` brings another. */
export const BUNDLED_SYNONYMS = fileURLToPath(new URL('../../../kb/synonyms.yaml', import.meta.url));

const phrase = z.string().trim().min(1).max(80);
const fileSchema = z.strictObject({
  version: z.int().min(1),
  groups: z.array(z.array(phrase).min(2).max(30)).max(5000).default([]),
  expand: z.record(phrase, z.array(phrase).min(1).max(30)).default({}),
});

/** A phrase as words: lower case, letters and digits (what both the query and the FTS5 tokenizer split on). */
export const words = (s: string): string[] => s.toLowerCase().match(/[\p{L}\p{N}]+/gu) ?? [];

const WORD_CHAR = /[\p{L}\p{N}]/u;

/**
 * Calls `visit(start, end)` for each word of `text`: the same runs of letters and digits as `words` finds, by
 * char code (ASCII without a regular expression) and without a match object or string per word. The re-ranking
 * and the excerpts read every word of each candidate's text: this is most of their cost.
 */
export function eachWord(text: string, visit: (start: number, end: number) => void): void {
  let start = -1;
  for (let k = 0; k < text.length; ) {
    const c = text.charCodeAt(k);
    let step = 1;
    let inWord: boolean;
    if (c < 128) inWord = (c >= 97 && c <= 122) || (c >= 48 && c <= 57) || (c >= 65 && c <= 90);
    else {
      const cp = text.codePointAt(k)!;
      if (cp > 0xffff) step = 2;
      inWord = WORD_CHAR.test(String.fromCodePoint(cp));
    }
    if (inWord) {
      if (start < 0) start = k;
    } else if (start >= 0) {
      visit(start, k);
      start = -1;
    }
    k += step;
  }
  if (start >= 0) visit(start, text.length);
}

/**
 * A crude English stem for matching words outside the index (the vocabulary file, the re-ranking in rank.ts;
 * the index has its own stemmer): "passwords" and "password", "blocked", "blocking" and "block", "dropped" and
 * "drop", "changes" and "change" meet.
 */
export function fold(w: string): string {
  let s = w;
  if (s.length > 4 && s.endsWith('ies')) s = `${s.slice(0, -3)}y`;
  else if (s.length > 3 && s.endsWith('s') && !s.endsWith('ss') && !s.endsWith('us')) s = s.slice(0, -1);
  const cut = s.length > 5 && s.endsWith('ing') ? 3 : s.length > 4 && s.endsWith('ed') ? 2 : 0;
  if (cut) {
    s = s.slice(0, -cut);
    if (s.length > 3 && s.at(-1) === s.at(-2) && !'lsz'.includes(s.at(-1)!)) s = s.slice(0, -1);
  }
  if (s.length > 3 && s.endsWith('e')) s = s.slice(0, -1);
  return s;
}

const key = (ws: string[]): string => ws.map(fold).join(' ');

export interface Synonyms {
  readonly version: number;
  readonly groupCount: number;
  /** Folded phrase → the phrases (as words) it also finds, itself included. */
  readonly alternatives: ReadonlyMap<string, readonly string[][]>;
  /** The most words any entry has: how far the matcher looks ahead. */
  readonly longest: number;
}

/** Validates and compiles the file's text; errors name the file, the field and the rule. */
export function parseSynonyms(text: string, file: string): Synonyms {
  let raw: unknown;
  try {
    raw = parse(text);
  } catch (e) {
    throw new Error(`${file}: not YAML: ${(e as Error).message.split('\n')[0]}`);
  }
  const r = fileSchema.safeParse(raw);
  if (!r.success) throw new Error(`${file}: ${formatIssues(r.error.issues).join('; ')}`);
  const alternatives = new Map<string, string[][]>();
  let longest = 1;
  const add = (from: string[], to: string[][]) => {
    const k = key(from);
    const list = alternatives.get(k) ?? [from];
    for (const t of to) if (!list.some((x) => key(x) === key(t))) list.push(t);
    alternatives.set(k, list);
    longest = Math.max(longest, from.length);
  };
  for (const [i, g] of r.data.groups.entries()) {
    const members = g.map(words);
    if (members.some((m) => !m.length)) throw new Error(`${file}: groups[${i}]: every entry needs a letter or digit`);
    for (const m of members) add(m, members);
  }
  for (const [from, to] of Object.entries(r.data.expand)) {
    const f = words(from);
    if (!f.length || to.some((t) => !words(t).length))
      throw new Error(`${file}: expand.${from}: every entry needs a letter or digit`);
    add(f, to.map(words));
  }
  return { version: r.data.version, groupCount: r.data.groups.length, alternatives, longest };
}

export const EMPTY_SYNONYMS: Synonyms = { version: 0, groupCount: 0, alternatives: new Map(), longest: 1 };

let bundled: Synonyms | undefined;
/** The shipped file, read once per process; none (an empty vocabulary) when the package has no kb/ folder. */
export function bundledSynonyms(): Synonyms {
  if (!bundled) {
    let text: string | undefined;
    try {
      text = readFileSync(BUNDLED_SYNONYMS, 'utf8');
    } catch {
      text = undefined;
    }
    bundled = text === undefined ? EMPTY_SYNONYMS : parseSynonyms(text, BUNDLED_SYNONYMS);
  }
  return bundled;
}
