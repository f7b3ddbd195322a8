/**
 * Diagnostic aid for the kb_search benchmark (not part of `npm run bench`): loads the same 10,000 synthetic
 * articles and times, on 1,000 of the benchmark's queries, EmbeddedKb.search as built and some plain FTS5
 * statements over every word of the query, to show where a query's time goes (how many articles a query
 * matches, BM25 over every match, snippet()).
 *   npm run build && node bench/kb-query-cost.mjs
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openDb } from '../dist/store/sqlite/db.js';
import { EmbeddedKb } from '../dist/tools/kb/embedded.js';
import { makeArticles, makeQueries } from './lib/kb-scale.mjs';
import { percentile } from './lib/stats.mjs';

/** Every word of the query, quoted, joined by OR (no stopword or common-term pruning). */
const allWords = (q) => [...new Set(q.toLowerCase().match(/[\p{L}\p{N}]+/gu) ?? [])].map((w) => `"${w}"`).join(' OR ');

function time(label, queries, fn) {
  const ms = [];
  for (const q of queries) {
    const t = performance.now();
    fn(q);
    ms.push(performance.now() - t);
  }
  console.log(`${label.padEnd(48)} p50 ${percentile(ms, 50).toFixed(2)} ms  p99 ${percentile(ms, 99).toFixed(2)} ms`);
}

const dir = mkdtempSync(join(tmpdir(), 'itguard-kbcost-'));
const db = openDb(join(dir, 'kb.db'));
try {
  const kb = new EmbeddedKb(db);
  kb.upsert(makeArticles(10_000));
  const queries = makeQueries(1000).map((x) => x.q);
  const count = db.prepare('SELECT count(*) FROM kb_fts WHERE kb_fts MATCH ?').pluck();
  const matches = queries.map((q) => count.get(allWords(q)));
  console.log(
    `articles matching any word of a query: p50 ${percentile(matches, 50)}, p99 ${percentile(matches, 99)} of 10,000`,
  );
  time('EmbeddedKb.find(q, 5) as built', queries, (q) => kb.find(q, 5));
  const all = db.prepare(
    `SELECT a.id, a.title, a.category, snippet(kb_fts, 3, '[[', ']]', ' … ', 24) AS snippet, bm25(kb_fts, 10.0, 5.0, 4.0, 1.0) AS score
       FROM kb_fts JOIN kb_articles a ON a.rowid = kb_fts.rowid WHERE kb_fts MATCH ? ORDER BY score LIMIT 5`,
  );
  time('all words: bm25 + join + snippet on every match', queries, (q) => all.all(allWords(q)));
  const rankOnly = db.prepare(
    'SELECT rowid, bm25(kb_fts, 10.0, 5.0, 4.0, 1.0) AS s FROM kb_fts WHERE kb_fts MATCH ? ORDER BY s LIMIT 5',
  );
  time('all words: bm25 only', queries, (q) => rankOnly.all(allWords(q)));
  // The same order through FTS5's own sorter (`rank MATCH`, ORDER BY rank): a nested statement over every match,
  // about twice the time of bm25() in the select list above (what EmbeddedKb's first stage runs).
  const rankSorter = db.prepare(
    `SELECT rowid, rank FROM kb_fts WHERE kb_fts MATCH ? AND rank MATCH 'bm25(10.0, 5.0, 4.0, 1.0)' ORDER BY rank LIMIT 5`,
  );
  time('all words: ORDER BY rank (FTS5 sorter)', queries, (q) => rankSorter.all(allWords(q)));
  time('all words: count matches only', queries, (q) => count.get(allWords(q)));
} finally {
  db.close();
  rmSync(dir, { recursive: true, force: true });
}
