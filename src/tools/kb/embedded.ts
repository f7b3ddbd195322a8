/**
 * Knowledge base on SQLite FTS5 (porter stemming): the query planned by query.ts (IT vocabulary file, spelling),
 * candidates by FTS5's field-weighted bm25 (title, then tags and the questions an article answers, then body),
 * ordered by rank.ts, excerpts cut by snippet.ts. See docs/architecture.md, "KB search".
 */
import type { CallOpts, ProbeReport } from '../../core/backend.js';
import type { Db } from '../../store/sqlite/db.js';
import type { Article, KbHit, KbPort } from '../../core/ports/kb.js';
import { type Alternative, type Concept, type Lexicon, planQuery } from './query.js';
import { scoreCandidates } from './rank.js';
import { KbSynonymStore } from './synonym-store.js';
import { snippet } from './snippet.js';
import { fold } from './synonyms.js';

export type { Article, KbHit } from '../../core/ports/kb.js';

/** What `kb import` and the demo seed need beside the port. */
export interface KbStore {
  upsert(articles: Article[]): { added: number; updated: number };
  count(): number;
}

/** BM25 weight per FTS5 column (title, tags, questions, body): a word in the title counts ten times one in the body. */
export const COLUMN_WEIGHTS = [10, 5, 4, 1] as const;

/** Alternatives as quoted FTS5 phrases joined by OR: no user text is ever parsed as FTS syntax. */
export function toFtsQuery(alternatives: string[][]): string | undefined {
  return alternatives.length ? alternatives.map((p) => `"${p.join(' ')}"`).join(' OR ') : undefined;
}

/** How many of FTS5's best matches the second stage (rank.ts) orders. */
const CANDIDATES = 10;

interface Candidate {
  rowid: number;
  id: string;
  title: string;
  category: string;
  tags: string;
  questions: string;
  body: string;
}

/** A term found in more than this share of articles carries little weight in BM25 but costs a score per match. */
const COMMON_SHARE = 0.2;
/** In a large KB a synonym held by more than this share of articles is not searched (little weight, many matches). */
const SYNONYM_SHARE = 0.05;
/** Synonyms per concept searched in a KB of PRUNE_FROM articles or more. */
const LARGE_KB_SYNONYMS = 2;
/** Below this many articles scoring every match is cheap, and each term matters: no pruning. */
const PRUNE_FROM = 2000;

/**
 * An upsert of this many articles or more, and of at least a quarter of the KB, merges the index into one segment
 * (FTS5 'optimize'): it rewrites the whole index inside the import's transaction, so a small batch into a large KB
 * leaves it to FTS5's automerge instead.
 */
const OPTIMIZE_FROM = 500;
const OPTIMIZE_SHARE = 0.25;

export class EmbeddedKb implements KbPort, KbStore {
  readonly kind = 'embedded';
  readonly synonyms: KbSynonymStore;
  private readonly candidateStmt;
  private readonly lengthStmt;
  private avgLen: number[] | undefined;
  private readonly getStmt;
  private readonly dfStmt;
  private total: number | undefined;
  private countedAt = 0;
  private readonly wordStmt;
  private readonly lexicon: Lexicon = {
    has: (w) => this.docFreq([w]) > 0,
    // Letters only ([a-z]): '{' is the character after 'z', so the range holds every word with the prefix.
    wordsStartingWith: (p) => this.wordStmt.iterate(p, `${p}{`),
    corrected: (w, find) => {
      // A correction reads a range of the word index: kept like the word counts, as long as they are.
      let c = this.corrections.get(w);
      if (c === undefined) {
        c = find() ?? null;
        if (this.corrections.size >= 10_000) this.corrections.clear();
        this.corrections.set(w, c);
      }
      return c ?? undefined;
    },
  };
  private readonly corrections = new Map<string, string | null>();

  constructor(private readonly db: Db) {
    this.synonyms = new KbSynonymStore(db);
    // First stage: FTS5's bm25 scores every match and SQLite's sorter keeps the best LIMIT (ties by rowid); their
    // text goes to rank.ts, which orders them, and snippet.ts, which cuts the excerpts. bm25() is called in the
    // select list on purpose: `ORDER BY rank` with `rank MATCH 'bm25(…)'` gives the same order but goes through
    // FTS5's own sorter (a nested statement over every match), which cost twice the time at 10,000 articles
    // (p99 5.7 ms against 2.8 ms CPU for this statement alone; bench/kb-query-cost.mjs shows both).
    this.candidateStmt = db.prepare<[string, number], Candidate>(
      `SELECT a.rowid, a.id, a.title, a.category, a.tags, a.questions, a.body
         FROM (SELECT rowid, bm25(kb_fts, ${COLUMN_WEIGHTS.join(', ')}) AS score FROM kb_fts
                WHERE kb_fts MATCH ?
                ORDER BY score, rowid LIMIT ?) s
         JOIN kb_articles a ON a.rowid = s.rowid
        ORDER BY s.score, s.rowid`,
    );
    this.wordStmt = db.prepare<[string, string], { term: string; n: number }>(
      'SELECT term, doc AS n FROM kb_words_vocab WHERE term >= ? AND term < ?',
    );
    this.lengthStmt = db.prepare<[], { t: number; g: number; q: number; b: number }>(
      'SELECT avg(length(title)) AS t, avg(length(tags)) AS g, avg(length(questions)) AS q, avg(length(body)) AS b FROM kb_articles',
    );
    this.dfStmt = db.prepare<[string], { n: number }>('SELECT count(*) AS n FROM kb_fts WHERE kb_fts MATCH ?');
    this.getStmt = db.prepare<[string], Omit<Article, 'tags' | 'questions'> & { tags: string; questions: string }>(
      'SELECT id, title, category, tags, questions, body, updated FROM kb_articles WHERE id = ? COLLATE NOCASE',
    );
  }

  async search(query: string, limit: number, _o?: CallOpts): Promise<KbHit[]> {
    return this.find(query, limit);
  }

  async get(id: string, _o?: CallOpts): Promise<Article | undefined> {
    return this.article(id);
  }

  async probe(_o: CallOpts): Promise<ProbeReport> {
    const n = this.count();
    const s = this.synonyms.current();
    return {
      backend: 'kb:embedded',
      target: 'the itguard database',
      ok: true,
      checks: [
        { name: 'read kb', ok: true, detail: `${n} article(s)` },
        { name: 'vocabulary', ok: true, detail: `version ${s.version}, ${s.groupCount} group(s), ${this.synonyms.source()}` },
      ],
    };
  }

  /** The search itself, synchronous (FTS5 in-process): the port's search and the benchmarks call it. */
  find(query: string, limit: number): KbHit[] {
    const n = this.count(); // refreshes the cached counts (and the vocabulary file) once a minute
    const concepts = this.prune(planQuery(query, this.synonyms.current(), this.lexicon));
    const fts = toFtsQuery(concepts.flat().map((a) => a.words));
    if (!fts) return [];
    const cands = this.candidateStmt.all(fts, Math.max(limit, CANDIDATES));
    const scores = scoreCandidates(
      concepts,
      cands.map((c) => [c.title, c.tags, c.questions, c.body]),
      (p) => this.docFreq(p),
      { n, avgLen: this.fieldLengths(), weights: COLUMN_WEIGHTS },
    );
    const wanted = new Set(concepts.flatMap((c) => c.flatMap((a) => a.words.map(fold))));
    return cands
      .map((c, i) => ({ c, i, score: scores[i]! }))
      .sort((x, y) => y.score - x.score || x.i - y.i)
      .slice(0, limit)
      .map(({ c, score }) => ({
        id: c.id,
        title: c.title,
        category: c.category,
        snippet: snippet(c.body, wanted),
        score: Math.max(0, Math.round(score * 1000) / 1000),
      }));
  }

  /**
   * In a large KB, drops what costs most and weighs least: alternatives most articles contain (low IDF), and
   * phrases with such a word in them ("log in": FTS5 walks every article holding "in" to check positions; a
   * phrase typed is searched as its other words instead). Each concept then keeps the words typed and at most
   * LARGE_KB_SYNONYMS synonyms, in the vocabulary file's order: FTS5's bm25 visits every phrase for every match.
   */
  private prune(concepts: Concept[]): Concept[] {
    const total = this.count();
    if (concepts.flat().length <= 1 || total < PRUNE_FROM) return concepts;
    const common = (words: string[]) => this.docFreq(words) > total * COMMON_SHARE;
    const kept: Concept[] = [];
    for (const c of concepts) {
      let synonyms = 0;
      const alts: Alternative[] = [];
      for (const a of c) {
        const split = a.words.length > 1 && a.words.some((w) => common([w]));
        const parts = split ? (a.weight === 1 ? a.words.filter((w) => !common([w])).map((w) => [w]) : []) : [a.words];
        for (const words of parts) {
          const df = this.docFreq(words);
          if (df === 0 || df > total * (a.weight === 1 ? COMMON_SHARE : SYNONYM_SHARE)) continue;
          if (a.weight !== 1 && synonyms++ >= LARGE_KB_SYNONYMS) continue;
          alts.push({ words, weight: a.weight });
        }
      }
      if (alts.length) kept.push(alts);
    }
    if (kept.length) return kept;
    // Only common words: the rarest one alone.
    const found = concepts.flat().filter((a) => this.docFreq(a.words) > 0);
    const rarest = found.sort((a, b) => this.docFreq(a.words) - this.docFreq(b.words))[0];
    return rarest ? [[rarest]] : [];
  }

  private fieldLengths(): number[] {
    if (!this.avgLen) {
      const r = this.lengthStmt.get();
      this.avgLen = [r?.t ?? 1, r?.g ?? 1, r?.q ?? 1, r?.b ?? 1];
    }
    return this.avgLen;
  }

  article(id: string): Article | undefined {
    const r = this.getStmt.get(id);
    return r && { ...r, tags: r.tags.split(' ').filter(Boolean), questions: r.questions.split('\n').filter(Boolean) };
  }

  upsert(articles: Article[]): { added: number; updated: number } {
    let added = 0;
    let updated = 0;
    const exists = this.db.prepare<[string], { n: number }>('SELECT count(*) AS n FROM kb_articles WHERE id = ?');
    const ins = this.db.prepare(
      `INSERT INTO kb_articles (id, title, category, tags, questions, body, updated)
       VALUES (@id, @title, @category, @tags, @questions, @body, @updated)
       ON CONFLICT(id) DO UPDATE SET title = excluded.title, category = excluded.category, tags = excluded.tags,
         questions = excluded.questions, body = excluded.body, updated = excluded.updated`,
    );
    this.db.transaction(() => {
      for (const a of articles) {
        if (exists.get(a.id)!.n) updated += 1;
        else added += 1;
        ins.run({ ...a, tags: a.tags.join(' '), questions: (a.questions ?? []).join('\n') });
      }
      // A large batch (kb import, the demo seed) leaves the index in many segments, each read by every query:
      // merged into one, a search at 10,000 articles costs about a tenth less (0.1 s to merge at that size).
      if (articles.length >= OPTIMIZE_FROM && articles.length >= OPTIMIZE_SHARE * this.articleCount())
        this.db.exec(`INSERT INTO kb_fts(kb_fts) VALUES('optimize')`);
    }).immediate();
    this.forget();
    return { added, updated };
  }

  private articleCount(): number {
    return (this.db.prepare('SELECT count(*) AS n FROM kb_articles').get() as { n: number }).n;
  }

  /** Cached for a minute: another process (itguard kb import) may add articles or bring a vocabulary file. */
  count(): number {
    const now = Date.now();
    if (this.total === undefined || now - this.countedAt > 60_000) {
      const n = this.articleCount();
      // The field lengths cost a pass over every article: kept while the count holds (an edit by another
      // process only makes a length norm a little stale until then).
      if (n !== this.total) this.avgLen = undefined;
      this.total = n;
      this.countedAt = now;
      this.dfs.clear();
      this.corrections.clear();
      this.synonyms.refresh();
    }
    return this.total;
  }

  private forget(): void {
    this.total = undefined;
    this.dfs.clear();
    this.corrections.clear();
    this.avgLen = undefined;
  }

  /**
   * How many articles hold a word or phrase (pruning, spelling): counted once and kept as long as the article
   * count (cleared with it, at most a minute, and at once by an upsert here). A stale count from another
   * process's import only moves the pruning line or misses a correction; the search itself always reads the index.
   */
  private docFreq(phrase: string[]): number {
    const k = phrase.join(' ');
    let n = this.dfs.get(k);
    if (n === undefined) {
      n = this.dfStmt.get(`"${k}"`)?.n ?? 0;
      if (this.dfs.size >= 50_000) this.dfs.clear();
      this.dfs.set(k, n);
    }
    return n;
  }

  private readonly dfs = new Map<string, number>();
}
