/** Knowledge base on SQLite FTS5: porter stemming, BM25 ranking (title and tags weigh more than body), highlighted snippets. */
import type { CallOpts, ProbeReport } from '../../backends/port.js';
import type { Db } from '../../store/db.js';
import type { Article, KbHit, KbPort } from './backend.js';

export type { Article, KbHit } from './backend.js';

/** What `kb import` and the demo seed need beside the port. */
export interface KbStore {
  upsert(articles: Article[]): { added: number; updated: number };
  count(): number;
}

/**
 * English function words: they match nearly every article and add next to nothing to BM25, but scoring every
 * match is what a query costs. Dropped unless the query has nothing else.
 */
const STOPWORDS = new Set(
  ('a an and are as at be been but by can cannot could did do does doing for from had has have having how i if in into is it its ' +
    'me my no not of on or our so than that the their them then there these they this those to too up us was we were what when ' +
    'where which while who why will with would you your').split(' '),
);

/** The query's words (stopwords dropped unless that leaves none), at most 32. */
export function queryTerms(query: string): string[] {
  const words = [...new Set(query.toLowerCase().match(/[\p{L}\p{N}]+/gu) ?? [])];
  const content = words.filter((w) => !STOPWORDS.has(w));
  return (content.length ? content : words).slice(0, 32);
}

/** Terms as quoted FTS5 strings joined by OR: no user text is ever parsed as FTS syntax. */
export function toFtsQuery(query: string | string[]): string | undefined {
  const terms = typeof query === 'string' ? queryTerms(query) : query;
  return terms.length ? terms.map((w) => `"${w}"`).join(' OR ') : undefined;
}

/** A term found in more than this share of articles carries little weight in BM25 but costs a score per match. */
const COMMON_SHARE = 0.2;
/** Below this many articles scoring every match is cheap, and each term matters: no pruning. */
const PRUNE_FROM = 2000;

export class EmbeddedKb implements KbPort, KbStore {
  readonly kind = 'embedded';
  private readonly searchStmt;
  private readonly getStmt;
  private readonly dfStmt;
  private total: number | undefined;
  private countedAt = 0;
  constructor(private readonly db: Db) {
    // ORDER BY rank (with bm25 weights set through `rank MATCH`) lets FTS5 sort internally and stop at LIMIT,
    // so snippet() runs only for the rows returned, not for every match.
    this.searchStmt = db.prepare<[string, number], KbHit>(
      `SELECT a.id, a.title, a.category, s.snippet, s.score
         FROM (SELECT rowid, snippet(kb_fts, 2, '[[', ']]', ' … ', 24) AS snippet, rank AS score
                 FROM kb_fts
                WHERE kb_fts MATCH ? AND rank MATCH 'bm25(10.0, 5.0, 1.0)'
                ORDER BY rank LIMIT ?) s
         JOIN kb_articles a ON a.rowid = s.rowid
        ORDER BY s.score`,
    );
    this.dfStmt = db.prepare<[string], { n: number }>('SELECT count(*) AS n FROM kb_fts WHERE kb_fts MATCH ?');
    this.getStmt = db.prepare<[string], Omit<Article, 'tags'> & { tags: string }>(
      'SELECT id, title, category, tags, body, updated FROM kb_articles WHERE id = ? COLLATE NOCASE',
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
    return { backend: 'kb:embedded', target: 'the itguard database', ok: true, checks: [{ name: 'read kb', ok: true, detail: `${n} article(s)` }] };
  }

  /** The search itself, synchronous (FTS5 in-process): the port's search and the benchmarks call it. */
  find(query: string, limit: number): KbHit[] {
    let terms = queryTerms(query);
    const total = this.count();
    if (terms.length > 1 && total >= PRUNE_FROM) {
      // Drop terms most articles contain (low IDF): ranking barely changes and far fewer matches are scored.
      const df = terms.map((t) => this.docFreq(t));
      const rare = terms.filter((_, i) => df[i]! <= total * COMMON_SHARE);
      terms = rare.length ? rare : [terms[df.indexOf(Math.min(...df))]!];
    }
    const fts = toFtsQuery(terms);
    return fts ? this.searchStmt.all(fts, limit) : [];
  }

  article(id: string): Article | undefined {
    const r = this.getStmt.get(id);
    return r && { ...r, tags: r.tags.split(' ').filter(Boolean) };
  }

  upsert(articles: Article[]): { added: number; updated: number } {
    let added = 0;
    let updated = 0;
    const exists = this.db.prepare<[string], { n: number }>('SELECT count(*) AS n FROM kb_articles WHERE id = ?');
    const ins = this.db.prepare(
      `INSERT INTO kb_articles (id, title, category, tags, body, updated) VALUES (@id, @title, @category, @tags, @body, @updated)
       ON CONFLICT(id) DO UPDATE SET title = excluded.title, category = excluded.category, tags = excluded.tags,
         body = excluded.body, updated = excluded.updated`,
    );
    this.db.transaction(() => {
      for (const a of articles) {
        if (exists.get(a.id)!.n) updated += 1;
        else added += 1;
        ins.run({ ...a, tags: a.tags.join(' ') });
      }
    }).immediate();
    this.total = undefined;
    this.dfs.clear();
    return { added, updated };
  }

  /** Cached for a minute: another process (itguard kb import) may add articles. */
  count(): number {
    const now = Date.now();
    if (this.total === undefined || now - this.countedAt > 60_000) {
      this.total = (this.db.prepare('SELECT count(*) AS n FROM kb_articles').get() as { n: number }).n;
      this.countedAt = now;
      this.dfs.clear();
    }
    return this.total;
  }

  /**
   * How many articles hold a word, for the pruning above: counted once and kept as long as the article count
   * (cleared with it, at most a minute, and at once by an upsert here). A stale count from another process's
   * import only moves the pruning line for that word; the search itself always reads the index.
   */
  private docFreq(word: string): number {
    let n = this.dfs.get(word);
    if (n === undefined) {
      n = this.dfStmt.get(`"${word}"`)?.n ?? 0;
      if (this.dfs.size >= 50_000) this.dfs.clear();
      this.dfs.set(word, n);
    }
    return n;
  }

  private readonly dfs = new Map<string, number>();
}
