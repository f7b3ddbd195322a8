/**
 * Knowledge base on PostgreSQL full-text search (issue 20: the embedded backends' tables on the PostgreSQL store, so
 * the demo runs there unchanged). The same search as the SQLite one (embedded.ts), stage for stage:
 * - the query is planned by query.ts (IT vocabulary file, spelling against the KB's own words);
 * - candidates come from the weighted `kb_articles.search` tsvector (title A, tags B, questions C, body D; GIN
 *   index), matched by `websearch_to_tsquery` over the alternatives written as quoted phrases joined by `or` (no
 *   user text is parsed as syntax: the planner's words are letters and digits) and ordered by `ts_rank` with
 *   weights in the proportions of embedded.ts's COLUMN_WEIGHTS;
 * - rank.ts orders them (BM25F with concepts), snippet.ts cuts the excerpts.
 *
 * The planner asks the index synchronously (does a word occur, which words start with these letters, how many
 * articles hold a phrase); a database round trip cannot be synchronous, so each search first fetches those answers
 * in one query per stage (the query's words, then every alternative's phrases), and the planner reads them from
 * memory. Counts are kept like the embedded KB's: until the article count changes, checked at most once a minute.
 */
import type { ISql } from 'postgres';
import { BackendError, type CallOpts, type ProbeReport } from '../../core/backend.js';
import { type PgStore, toPgStoreError } from '../../store/postgres/connect.js';
import type { Article, KbHit, KbPort } from '../../core/ports/kb.js';
import { COLUMN_WEIGHTS, toFtsQuery } from './embedded.js';
import { type Alternative, type Concept, type Lexicon, planQuery } from './query.js';
import { scoreCandidates } from './rank.js';
import { snippet } from './snippet.js';
import { correctable, correctionPrefix } from './spell.js';
import { bundledSynonyms, fold, parseSynonyms, type Synonyms, words } from './synonyms.js';

/** ts_rank's weights array is {D, C, B, A}: body, questions, tags, title, scaled from COLUMN_WEIGHTS (title = 1). */
const [W_TITLE, W_TAGS, W_QUESTIONS, W_BODY] = COLUMN_WEIGHTS;
export const TS_RANK_WEIGHTS = `{${[W_BODY, W_QUESTIONS, W_TAGS, W_TITLE].map((w) => w / W_TITLE).join(', ')}}`;

/** As in embedded.ts: how many candidates rank.ts orders, and when and how far a large KB's query is pruned. */
const CANDIDATES = 10;
const COMMON_SHARE = 0.2;
const SYNONYM_SHARE = 0.05;
const LARGE_KB_SYNONYMS = 2;
const PRUNE_FROM = 2000;

/** Advisory lock key for imports (one at a time, so the vocabulary table is rebuilt by one of them at a time). */
const IMPORT_LOCK_KEY = '7598801409335960577';

interface Candidate {
  id: string;
  title: string;
  category: string;
  tags: string;
  questions: string;
  body: string;
}

interface Counts {
  total: number;
  avgLen: number[];
  synonymsAt: number;
  at: number;
}

export class PostgresKb implements KbPort {
  readonly kind = 'postgres';
  private counts: Counts | undefined;
  private vocab: { at: number; synonyms: Synonyms; source: string } | undefined;
  private readonly dfs = new Map<string, number>();
  private readonly corrections = new Map<string, string | null>();

  constructor(private readonly store: PgStore) {}

  /** The IT vocabulary in use and `kb import`'s way to replace it, as EmbeddedKb.synonyms (the CLI reads both alike). */
  readonly synonyms = {
    current: async (): Promise<Synonyms> => (await this.vocabularyOrStoreError()).synonyms,
    source: async (): Promise<string> => (await this.vocabularyOrStoreError()).source,
    put: (text: string, source: string): Promise<Synonyms> => this.putSynonyms(text, source),
  };

  private async vocabularyOrStoreError() {
    try {
      return await this.vocabulary();
    } catch (e) {
      throw toPgStoreError(this.store.target, e);
    }
  }

  async search(query: string, limit: number, o: CallOpts): Promise<KbHit[]> {
    try {
      return await this.find(query, limit, o.signal);
    } catch (e) {
      throw this.backendError(e);
    }
  }

  async get(id: string, o: CallOpts): Promise<Article | undefined> {
    try {
      const [r] = await this.store.sql<(Candidate & { updated: string })[]>`
        SELECT id, title, category, tags, questions, body, updated FROM kb_articles WHERE lower(id) = lower(${id})`.signal(
        o.signal,
      );
      return (
        r && {
          id: r.id,
          title: r.title,
          category: r.category,
          tags: r.tags.split(' ').filter(Boolean),
          body: r.body,
          updated: r.updated,
          questions: r.questions.split('\n').filter(Boolean),
        }
      );
    } catch (e) {
      throw this.backendError(e);
    }
  }

  async probe(o: CallOpts): Promise<ProbeReport> {
    try {
      const c = await this.refresh(o.signal, true);
      const s = await this.vocabulary(o.signal);
      return {
        backend: 'kb:postgres',
        target: this.store.target,
        ok: true,
        checks: [
          { name: 'read kb', ok: true, detail: `${c.total} article(s)` },
          { name: 'vocabulary', ok: true, detail: `version ${s.synonyms.version}, ${s.synonyms.groupCount} group(s), ${s.source}` },
        ],
      };
    } catch (e) {
      return {
        backend: 'kb:postgres',
        target: this.store.target,
        ok: false,
        checks: [{ name: 'read kb', ok: false, detail: toPgStoreError(this.store.target, e).message }],
      };
    }
  }

  /** The search: a few round trips (counts when stale, the query's words, its phrases, the candidates). */
  async find(query: string, limit: number, signal?: AbortSignal): Promise<KbHit[]> {
    const { total: n, avgLen } = await this.refresh(signal);
    const syn = (await this.vocabulary(signal)).synonyms;
    // Stage 1: what the planner will ask about the words typed (does the index hold them; if not, the KB's words
    // that share their first letters, for spelling).
    const toks = [...new Set(words(query).slice(0, 64))];
    await this.fetchDocFreqs(
      toks.map((t) => [t]),
      signal,
    );
    const prefixes = [
      ...new Set(
        toks.filter((t) => correctable(t) && this.df([t]) === 0 && !this.corrections.has(t)).map(correctionPrefix),
      ),
    ];
    const vocab = await this.wordsStartingWith(prefixes, signal);
    const lexicon: Lexicon = {
      has: (w) => this.df([w]) > 0,
      wordsStartingWith: (p) => vocab.get(p) ?? [],
      corrected: (w, find) => {
        let c = this.corrections.get(w);
        if (c === undefined) {
          c = find() ?? null;
          if (this.corrections.size >= 10_000) this.corrections.clear();
          this.corrections.set(w, c);
        }
        return c ?? undefined;
      },
    };
    const planned = planQuery(query, syn, lexicon);
    // Stage 2: how many articles hold each alternative (and each of its words, should pruning split a phrase).
    await this.fetchDocFreqs(
      planned.flat().flatMap((a) => [a.words, ...(a.words.length > 1 ? a.words.map((w) => [w]) : [])]),
      signal,
    );
    const concepts = this.prune(planned, n);
    const ts = toFtsQuery(concepts.flat().map((a) => a.words));
    if (!ts) return [];
    const cands = await this.store.sql<Candidate[]>`
      SELECT a.id, a.title, a.category, a.tags, a.questions, a.body
        FROM kb_articles a, websearch_to_tsquery('english', ${ts}) q
       WHERE a.search @@ q
       ORDER BY ts_rank(${TS_RANK_WEIGHTS}::FLOAT4[], a.search, q) DESC, a.rowid
       LIMIT ${Math.max(limit, CANDIDATES)}`.signal(signal);
    const scores = scoreCandidates(
      concepts,
      cands.map((c) => [c.title, c.tags, c.questions, c.body]),
      (p) => this.df(p),
      { n, avgLen, weights: COLUMN_WEIGHTS },
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
   * Adds or replaces articles (by id, case-insensitively as get() finds them) and rebuilds the spelling vocabulary,
   * in one transaction; imports from several processes take turns on an advisory lock.
   */
  async upsert(articles: Article[]): Promise<{ added: number; updated: number }> {
    const byId = new Map<string, Article>();
    for (const a of articles) byId.set(a.id, a);
    const rows = [...byId.values()].map((a) => ({
      id: a.id,
      title: a.title,
      category: a.category,
      tags: a.tags.join(' '),
      questions: (a.questions ?? []).join('\n'),
      body: a.body,
      updated: a.updated,
    }));
    let added = 0;
    let updated = 0;
    try {
      await this.store.sql.begin(async (tx) => {
        await tx.unsafe(`SET LOCAL statement_timeout = 600000`);
        await tx.unsafe(`SELECT pg_advisory_xact_lock(${IMPORT_LOCK_KEY})`);
        for (let i = 0; i < rows.length; i += 500) {
          const batch = rows.slice(i, i + 500);
          const r = await tx<{ inserted: boolean }[]>`
            INSERT INTO kb_articles ${tx(batch)}
            ON CONFLICT (id) DO UPDATE SET title = excluded.title, category = excluded.category, tags = excluded.tags,
              questions = excluded.questions, body = excluded.body, updated = excluded.updated
            RETURNING (xmax = 0) AS inserted`;
          for (const x of r) if (x.inserted) added += 1;
          else updated += 1;
        }
        await rebuildVocabulary(tx);
      });
    } catch (e) {
      throw toPgStoreError(this.store.target, e);
    }
    this.forget();
    return { added, updated };
  }

  /** Validates and stores the IT vocabulary file `kb import` brings (an invalid file throws and changes nothing). */
  async putSynonyms(text: string, source: string, now = Date.now()): Promise<Synonyms> {
    const s = parseSynonyms(text, source);
    try {
      await this.store.sql`
        INSERT INTO kb_synonyms (id, version, source, text, imported_at) VALUES (1, ${s.version}, ${source}, ${text}, ${now})
        ON CONFLICT (id) DO UPDATE SET version = excluded.version, source = excluded.source, text = excluded.text,
          imported_at = excluded.imported_at`;
    } catch (e) {
      throw toPgStoreError(this.store.target, e);
    }
    this.vocab = undefined;
    this.forget();
    return s;
  }

  async count(signal?: AbortSignal): Promise<number> {
    return (await this.refresh(signal)).total;
  }

  /** Article count, field lengths and the vocabulary file's stamp, read again after a minute (or when forced). */
  private async refresh(signal?: AbortSignal, force = false): Promise<Counts> {
    const now = Date.now();
    if (this.counts && !force && now - this.counts.at <= 60_000) return this.counts;
    const [r] = await this.store.sql<{ n: number; t: number; g: number; q: number; b: number; s: number }[]>`
      SELECT count(*)::INT AS n,
             coalesce(avg(length(title)), 1)::FLOAT8 AS t, coalesce(avg(length(tags)), 1)::FLOAT8 AS g,
             coalesce(avg(length(questions)), 1)::FLOAT8 AS q, coalesce(avg(length(body)), 1)::FLOAT8 AS b,
             coalesce((SELECT imported_at FROM kb_synonyms WHERE id = 1), 0) AS s
        FROM kb_articles`.signal(signal);
    if (!this.counts || this.counts.total !== r!.n) {
      this.dfs.clear();
      this.corrections.clear();
    }
    if (this.vocab && this.vocab.at !== r!.s) this.vocab = undefined;
    this.counts = { total: r!.n, avgLen: [r!.t || 1, r!.g || 1, r!.q || 1, r!.b || 1], synonymsAt: r!.s, at: now };
    return this.counts;
  }

  private async vocabulary(signal?: AbortSignal): Promise<{ at: number; synonyms: Synonyms; source: string }> {
    if (this.vocab) return this.vocab;
    const [row] = await this.store.sql<{ version: number; source: string; text: string; imported_at: number }[]>`
      SELECT version, source, text, imported_at FROM kb_synonyms WHERE id = 1`.signal(signal);
    this.vocab = row
      ? {
          at: row.imported_at,
          synonyms: parseSynonyms(row.text, row.source),
          source: `imported from ${row.source} at ${new Date(row.imported_at).toISOString()}`,
        }
      : { at: 0, synonyms: bundledSynonyms(), source: 'shipped with itguard (kb/synonyms.yaml)' };
    return this.vocab;
  }

  private forget(): void {
    this.counts = undefined;
    this.dfs.clear();
    this.corrections.clear();
  }

  /** How many articles hold the phrase, as fetched for this search (0 when it was not: it is then not searched). */
  private df(phrase: string[]): number {
    return this.dfs.get(phrase.join(' ')) ?? 0;
  }

  /** Counts the phrases not yet known in one query (phraseto_tsquery: the index's stemming, in order). */
  private async fetchDocFreqs(phrases: string[][], signal?: AbortSignal): Promise<void> {
    const missing = [...new Set(phrases.map((p) => p.join(' ')))].filter((k) => k && !this.dfs.has(k));
    if (!missing.length) return;
    const rows = await this.store.sql<{ p: string; n: number }[]>`
      SELECT p, (SELECT count(*)::INT FROM kb_articles WHERE search @@ phraseto_tsquery('english', p)) AS n
        FROM unnest(${missing}::TEXT[]) AS p`.signal(signal);
    if (this.dfs.size + rows.length > 50_000) this.dfs.clear();
    for (const r of rows) this.dfs.set(r.p, r.n);
  }

  /** The KB's words (unstemmed) starting with each prefix, and how many articles hold each: one indexed range each. */
  private async wordsStartingWith(
    prefixes: string[],
    signal?: AbortSignal,
  ): Promise<Map<string, { term: string; n: number }[]>> {
    const out = new Map<string, { term: string; n: number }[]>();
    if (!prefixes.length) return out;
    // Letters only ([a-z]): '{' is the character after 'z', so the range holds every word with the prefix.
    const rows = await this.store.sql<{ p: string; term: string; n: number }[]>`
      SELECT p, v.term, v.doc AS n
        FROM unnest(${prefixes}::TEXT[]) AS p
        JOIN kb_words_vocab v ON v.term >= p COLLATE "C" AND v.term < (p || '{') COLLATE "C"`.signal(signal);
    for (const r of rows) {
      const l = out.get(r.p);
      if (l) l.push({ term: r.term, n: r.n });
      else out.set(r.p, [{ term: r.term, n: r.n }]);
    }
    return out;
  }

  /** embedded.ts's pruning for a large KB, on the counts fetched for this search. */
  private prune(concepts: Concept[], total: number): Concept[] {
    if (concepts.flat().length <= 1 || total < PRUNE_FROM) return concepts;
    const common = (ws: string[]) => this.df(ws) > total * COMMON_SHARE;
    const kept: Concept[] = [];
    for (const c of concepts) {
      let synonyms = 0;
      const alts: Alternative[] = [];
      for (const a of c) {
        const split = a.words.length > 1 && a.words.some((w) => common([w]));
        const parts = split ? (a.weight === 1 ? a.words.filter((w) => !common([w])).map((w) => [w]) : []) : [a.words];
        for (const ws of parts) {
          const df = this.df(ws);
          if (df === 0 || df > total * (a.weight === 1 ? COMMON_SHARE : SYNONYM_SHARE)) continue;
          if (a.weight !== 1 && synonyms++ >= LARGE_KB_SYNONYMS) continue;
          alts.push({ words: ws, weight: a.weight });
        }
      }
      if (alts.length) kept.push(alts);
    }
    if (kept.length) return kept;
    const found = concepts.flat().filter((a) => this.df(a.words) > 0);
    const rarest = found.sort((a, b) => this.df(a.words) - this.df(b.words))[0];
    return rarest ? [[rarest]] : [];
  }

  private backendError(e: unknown): BackendError {
    if (e instanceof BackendError) return e;
    // A lost connection or a serialization failure may be tried again; a call the caller aborted (57014) is not.
    const err = toPgStoreError(this.store.target, e);
    return new BackendError(`knowledge base: ${err.message}`, err.retryable);
  }
}

/**
 * kb_words_vocab from the articles: every word as written (lower case, 'simple' configuration: no stemming, no
 * stop words) and how many articles hold it, what FTS5's kb_words_vocab gives the embedded KB. Also run by
 * `store copy` (store/postgres/copy.ts) after it brings a SQLite file's articles.
 */
export async function rebuildVocabulary(tx: ISql): Promise<void> {
  await tx`DELETE FROM kb_words_vocab`;
  await tx`
    INSERT INTO kb_words_vocab (term, doc, cnt)
    SELECT word, ndoc, nentry
      FROM ts_stat('SELECT to_tsvector(''simple'', title || '' '' || tags || '' '' || questions || '' '' || body) FROM kb_articles')
     WHERE word ~ '^[[:alnum:]]+$'`;
}
