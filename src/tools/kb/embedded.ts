/** Knowledge base on SQLite FTS5: porter stemming, BM25 ranking (title and tags weigh more than body), highlighted snippets. */
import type { Db } from '../../store/db.js';

export interface Article {
  id: string;
  title: string;
  category: string;
  tags: string[];
  body: string;
  updated: string;
}

export interface KbHit {
  id: string;
  title: string;
  category: string;
  snippet: string;
  score: number;
}

export interface KbBackend {
  search(query: string, limit: number): KbHit[];
  get(id: string): Article | undefined;
  upsert(articles: Article[]): { added: number; updated: number };
  count(): number;
}

/** Words of the query as quoted FTS5 terms joined by OR: no user text is ever parsed as FTS syntax. */
export function toFtsQuery(query: string): string | undefined {
  const words = query.toLowerCase().match(/[\p{L}\p{N}]+/gu) ?? [];
  const unique = [...new Set(words)].slice(0, 32);
  return unique.length ? unique.map((w) => `"${w}"`).join(' OR ') : undefined;
}

export class EmbeddedKb implements KbBackend {
  private readonly searchStmt;
  private readonly getStmt;
  constructor(private readonly db: Db) {
    this.searchStmt = db.prepare<[string, number], KbHit>(
      `SELECT a.id, a.title, a.category,
              snippet(kb_fts, 2, '[[', ']]', ' … ', 24) AS snippet,
              bm25(kb_fts, 10.0, 5.0, 1.0) AS score
         FROM kb_fts JOIN kb_articles a ON a.rowid = kb_fts.rowid
        WHERE kb_fts MATCH ?
        ORDER BY score LIMIT ?`,
    );
    this.getStmt = db.prepare<[string], Omit<Article, 'tags'> & { tags: string }>(
      'SELECT id, title, category, tags, body, updated FROM kb_articles WHERE id = ? COLLATE NOCASE',
    );
  }

  search(query: string, limit: number): KbHit[] {
    const fts = toFtsQuery(query);
    return fts ? this.searchStmt.all(fts, limit) : [];
  }

  get(id: string): Article | undefined {
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
    return { added, updated };
  }

  count(): number {
    return (this.db.prepare('SELECT count(*) AS n FROM kb_articles').get() as { n: number }).n;
  }
}
