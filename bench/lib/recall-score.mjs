/**
 * Recall of a KB search on an evaluation set (bench/kb-eval/*.json): pure, so the benchmark (over dist/) and
 * the test (over src/) score the same way.
 */
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

export const QUESTIONS_FILE = fileURLToPath(new URL('../kb-eval/questions.json', import.meta.url));
export const HELD_OUT_FILE = fileURLToPath(new URL('../kb-eval/held-out.json', import.meta.url));

export function loadQuestions(file = QUESTIONS_FILE) {
  return JSON.parse(readFileSync(file, 'utf8')).questions;
}

/** Ranks every question with `find(q, limit)`: recall@1, recall@3, and the questions not answered first. */
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
