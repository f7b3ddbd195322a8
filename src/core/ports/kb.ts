/** The knowledge-base port: search and read, for every KB adapter (embedded: SQLite FTS5). Import is the embedded store's own verb. */
import type { CallOpts, ProbeReport } from '../backend.js';

export interface Article {
  id: string;
  title: string;
  category: string;
  tags: string[];
  body: string;
  updated: string;
  /** Questions the article answers, as employees ask them (front matter `questions:`); searched, not shown. */
  questions?: string[];
}

export interface KbHit {
  id: string;
  title: string;
  category: string;
  snippet: string;
  /** Relevance, higher is better, never negative; comparable only within one result list. */
  score: number;
}

export interface KbPort {
  readonly kind: string;
  search(query: string, limit: number, o: CallOpts): Promise<KbHit[]>;
  get(id: string, o: CallOpts): Promise<Article | undefined>;
  probe(o: CallOpts): Promise<ProbeReport>;
}
