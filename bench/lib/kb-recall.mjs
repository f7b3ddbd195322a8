/**
 * Benchmark 6: how well kb_search answers employees. The questions of bench/kb-eval/questions.json (written
 * before any tuning, each mapped to the one demo article that answers it) are searched on a new database seeded
 * with the shipped demo KB (kb/, through seedDemo, as `serve` does) with kb_search's default limit; recall@1 is
 * the share of questions whose article comes first, recall@3 the share with it in the first three.
 *   npm run build && node bench/lib/kb-recall.mjs      (prints the misses too)
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { seedDemo } from '../../dist/demo/seed.js';
import { openDb } from '../../dist/store/db.js';
import { EmbeddedKb } from '../../dist/tools/kb/embedded.js';

export const QUESTIONS_FILE = fileURLToPath(new URL('../kb-eval/questions.json', import.meta.url));

export function loadQuestions(file = QUESTIONS_FILE) {
  return JSON.parse(readFileSync(file, 'utf8')).questions;
}

/** Ranks every question with `find(q, limit)` and scores the answers (pure: tests pass their own search). */
export function scoreRecall(questions, find, limit = 5) {
  const rows = questions.map(({ q, id, kind }) => {
    const hits = find(q, limit).map((h) => h.id);
    const rank = hits.indexOf(id) + 1;
    return { q, id, kind, rank, got: hits.slice(0, 3) };
  });
  const share = (f) => rows.filter(f).length / rows.length;
  return {
    n: rows.length,
    at1: share((r) => r.rank === 1),
    at3: share((r) => r.rank >= 1 && r.rank <= 3),
    misses: rows.filter((r) => r.rank !== 1),
    rows,
  };
}

/** recall@1 and recall@3 of the embedded KB (as built in dist/) on the demo articles. */
export async function kbRecall({ questions = loadQuestions() } = {}) {
  const dir = mkdtempSync(join(tmpdir(), 'itguard-bench-recall-'));
  const db = openDb(join(dir, 'kb.db'));
  try {
    seedDemo(db);
    const kb = new EmbeddedKb(db);
    return { articles: kb.count(), ...scoreRecall(questions, (q, n) => kb.find(q, n)) };
  } finally {
    db.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const r = await kbRecall();
  for (const m of r.misses) console.log(`${m.rank || '-'}\t${m.id}\t${m.got.join(',')}\t${m.q}`);
  console.log(`${r.n} questions on ${r.articles} articles: recall@1 ${r.at1.toFixed(3)}, recall@3 ${r.at3.toFixed(3)}`);
}
