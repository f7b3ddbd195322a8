/** Benchmark 6 (kb_search recall) in the summary table and docs/benchmarks.md; kept apart from report.mjs. */
import { fmt } from './stats.mjs';

/**
 * The search before issue 21's work (commit 4e19174: FTS5 bm25 10/5/1 over title, tags, body, porter stemming,
 * no vocabulary file, no re-ranking), measured on the same question files with bench/lib/kb-recall.mjs. A fixed
 * reference, not re-measured by each run.
 */
export const BEFORE = {
  commit: '4e19174',
  tuned: { at1: 59 / 92, at3: 77 / 92 },
  heldOut: { at1: 27 / 36, at3: 30 / 36 },
};

const pct = (x) => fmt(x, 3);

export function recallRows(k) {
  if (!k) return [];
  return [
    {
      name: `kb_search recall@3 on ${k.tuned.n} employee questions (${k.articles} demo articles)`,
      baseline: `before (${BEFORE.commit}): ${pct(BEFORE.tuned.at3)}`,
      itguard: `held-out ${k.heldOut.n}: ${pct(k.heldOut.at3)}`,
      result: `recall@3 ${pct(k.tuned.at3)}`,
      target: '≥ 0.95',
      ok: k.tuned.at3 >= 0.95,
    },
    {
      name: `kb_search recall@1 on ${k.tuned.n} employee questions (${k.articles} demo articles)`,
      baseline: `before (${BEFORE.commit}): ${pct(BEFORE.tuned.at1)}`,
      itguard: `held-out ${k.heldOut.n}: ${pct(k.heldOut.at1)}`,
      result: `recall@1 ${pct(k.tuned.at1)}`,
      target: '≥ 0.8',
      ok: k.tuned.at1 >= 0.8,
    },
  ];
}

export const recallMeasures = `6. **kb_search recall** — the employee-style questions of \`bench/kb-eval/questions.json\` (paraphrases, typos,
   questions sharing no word with the title; written before any tuning, one answering article each) searched on a
   new database seeded with the 60 shipped demo articles (\`EmbeddedKb.find(question, 5)\`): recall@1 is the share
   whose article comes first, recall@3 the share with it in the first three. \`bench/kb-eval/held-out.json\` was
   written after the tuning and never tuned on: it shows how far the tuning carries. "Before" is the search at commit
   ${BEFORE.commit}, measured once on the same files. Targets: recall@3 ≥ 0.95, recall@1 ≥ 0.8 (on questions.json).`;

export function recallSection(k) {
  if (!k) return '';
  const row = (name, before, s) => [name, String(s.n), pct(before.at1), pct(s.at1), pct(before.at3), pct(s.at3)];
  const kinds = [...new Set(k.tuned.rows.map((x) => x.kind))].sort();
  const byKind = kinds.map((kind) => {
    const rows = k.tuned.rows.filter((x) => x.kind === kind);
    const at = (n) => rows.filter((x) => x.rank >= 1 && x.rank <= n).length / rows.length;
    return [`questions.json, ${kind}`, String(rows.length), '', pct(at(1)), '', pct(at(3))];
  });
  const misses = (s) =>
    s.misses.map(
      (m) => `- ${m.rank ? `#${m.rank}` : 'not in the first 5'}: "${m.q}" (${m.id}; first: ${m.got.join(', ')})`,
    );
  return `### 6. kb_search recall on employee questions

Vocabulary file version ${k.vocabulary}; ${k.articles} demo articles.

| questions | n | recall@1 before | recall@1 | recall@3 before | recall@3 |
| --- | --- | --- | --- | --- | --- |
${[
  row('questions.json (targets)', BEFORE.tuned, k.tuned),
  row('held-out.json (never tuned on)', BEFORE.heldOut, k.heldOut),
  ...byKind,
]
  .map((r) => `| ${r.join(' | ')} |`)
  .join('\n')}

Not answered first, questions.json:
${misses(k.tuned).join('\n') || '- none'}

Not answered first, held-out.json:
${misses(k.heldOut).join('\n') || '- none'}
`;
}
