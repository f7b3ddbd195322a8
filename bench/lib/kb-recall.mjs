/**
 * Benchmark 6: how well kb_search answers employees. The questions of bench/kb-eval/questions.json (written
 * before any tuning, each mapped to the one demo article that answers it) and bench/kb-eval/held-out.json
 * (written after, never tuned on) are searched on a new database seeded with the shipped demo KB (kb/, through
 * seedDemo, as `serve` does) with kb_search's default limit: recall@1 is the share of questions whose article
 * comes first, recall@3 the share with it in the first three.
 *   npm run build && node bench/lib/kb-recall.mjs      (prints the misses too)
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { seedDemo } from '../../dist/demo/seed.js';
import { openDb } from '../../dist/store/sqlite/db.js';
import { EmbeddedKb } from '../../dist/tools/kb/embedded.js';
import { HELD_OUT_FILE, loadQuestions, QUESTIONS_FILE, scoreRecall } from './recall-score.mjs';

/** recall@1 and recall@3 of the embedded KB (as built in dist/) on the demo articles, for each question set. */
export async function kbRecall() {
  const dir = mkdtempSync(join(tmpdir(), 'itguard-bench-recall-'));
  const db = openDb(join(dir, 'kb.db'));
  try {
    seedDemo(db);
    const kb = new EmbeddedKb(db);
    const find = (q, n) => kb.find(q, n);
    return {
      articles: kb.count(),
      vocabulary: kb.synonyms.current().version,
      tuned: scoreRecall(loadQuestions(QUESTIONS_FILE), find),
      heldOut: scoreRecall(loadQuestions(HELD_OUT_FILE), find),
    };
  } finally {
    db.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const r = await kbRecall();
  for (const [name, s] of [
    ['questions.json', r.tuned],
    ['held-out.json', r.heldOut],
  ]) {
    for (const m of s.misses) console.log(`${m.rank || '-'}\t${m.id}\t${m.got.join(',')}\t${m.q}`);
    console.log(
      `${name}: ${s.n} questions on ${r.articles} articles: recall@1 ${s.at1.toFixed(3)}, recall@3 ${s.at3.toFixed(3)}`,
    );
  }
}
