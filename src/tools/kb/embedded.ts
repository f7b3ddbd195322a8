/**
 * Knowledge base on SQLite FTS5: porter stemming, field-weighted BM25 (title, then tags and the questions an
 * article answers, then body), the IT vocabulary file and spelling correction (query.ts), highlighted snippets.
 */
import type { CallOpts, ProbeReport } from '../../backends/port.js';
import type { Db } from '../../store/db.js';
import type { Article, KbHit, KbPort } from './backend.js';
import { type Concept, type Lexicon, planQuery } from './query.js';
import { KbSynonymStore } from './synonym-store.js';
import { words } from './synonyms.js';

export type { Article, KbHit } from './backend.js';

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

/** A term found in more than this share of articles carries little weight in BM25 but costs a score per match. */
const COMMON_SHARE = 0.2;
/** Below this many articles scoring every match is cheap, and each term matters: no pruning. */
const PRUNE_FROM = 2000;

export class EmbeddedKb implements KbPort, KbStore {
  readonly kind = 'embedded';
  readonly synonyms: KbSynonymStore;
  private readonly searchStmt;
  private readonly getStmt;
  private readonly dfStmt;
  private total: number | undefined;
  private countedAt = 0;
  private vocab: Map<string, number> | undefined;
  private readonly lexicon: Lexicon = {
    has: (w) => this.docFreq([w]) > 0,
    vocabulary: () => (this.vocab ??= this.readVocabulary()),
  };

  constructor(private readonly db: Db) {
    this.synonyms = new KbSynonymStore(db);
    // ORDER BY rank (with bm25 weights set through `rank MATCH`) lets FTS5 sort internally and stop at LIMIT,
    // so snippet() runs only for the rows returned, not for every match.
    this.searchStmt = db.prepare<[string, number], KbHit>(
      `SELECT a.id, a.title, a.category, s.snippet, s.score
         FROM (SELECT rowid, snippet(kb_fts, 3, '[[', ']]', ' … ', 24) AS snippet, rank AS score
                 FROM kb_fts
                WHERE kb_fts MATCH ? AND rank MATCH 'bm25(${COLUMN_WEIGHTS.join(', ')})'
                ORDER BY rank LIMIT ?) s
         JOIN kb_articles a ON a.rowid = s.rowid
        ORDER BY s.score`,
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
    this.count(); // refreshes the cached counts (and the vocabulary file) once a minute
    const fts = toFtsQuery(this.prune(planQuery(query, this.synonyms.current(), this.lexicon)));
    if (!fts) return [];
    // FTS5's bm25() is negative, lower better: shown as a positive relevance, higher better.
    return this.searchStmt.all(fts, limit).map((h) => ({ ...h, score: Math.max(0, Math.round(-h.score * 1000) / 1000) }));
  }

  /** Drops alternatives most articles contain (low IDF) in a large KB: ranking barely changes and far fewer matches are scored. */
  private prune(concepts: Concept[]): string[][] {
    const alts = concepts.flat();
    const total = this.count();
    if (alts.length <= 1 || total < PRUNE_FROM) return alts;
    const df = alts.map((p) => this.docFreq(p));
    const rare = alts.filter((_, i) => df[i]! > 0 && df[i]! <= total * COMMON_SHARE);
    if (rare.length) return rare;
    const best = df.indexOf(Math.min(...df.filter((n) => n > 0)));
    return best >= 0 ? [alts[best]!] : [];
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
    }).immediate();
    this.forget();
    return { added, updated };
  }

  /** Cached for a minute: another process (itguard kb import) may add articles or bring a vocabulary file. */
  count(): number {
    const now = Date.now();
    if (this.total === undefined || now - this.countedAt > 60_000) {
      this.total = (this.db.prepare('SELECT count(*) AS n FROM kb_articles').get() as { n: number }).n;
      this.countedAt = now;
      this.dfs.clear();
      this.vocab = undefined;
      this.synonyms.refresh();
    }
    return this.total;
  }

  private forget(): void {
    this.total = undefined;
    this.dfs.clear();
    this.vocab = undefined;
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

  /** Every word of every article (unstemmed) and how many articles hold it: read only when a query word is unknown. */
  private readVocabulary(): Map<string, number> {
    const vocab = new Map<string, number>();
    const rows = this.db.prepare<[], { t: string }>(
      "SELECT title || ' ' || tags || ' ' || questions || ' ' || body AS t FROM kb_articles",
    );
    for (const { t } of rows.iterate()) for (const w of new Set(words(t))) vocab.set(w, (vocab.get(w) ?? 0) + 1);
    return vocab;
  }

  private readonly dfs = new Map<string, number>();
}
