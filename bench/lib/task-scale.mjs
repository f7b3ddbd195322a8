/**
 * Benchmark 6: the cost of a call's admission (BudgetStore.admit: the fleet breaker, the task row, the windowed
 * budgets, the identical-call count, in one transaction) and of its settle, as the number of open tasks grows from
 * 0 to 100,000 (DESIGN §9: checks flat from 0 to 100,000 open tasks). Each size is its own database; the open
 * tasks are bulk-inserted (each with a few identical-call rows, as real tasks have), then admit + settle pairs for
 * new and existing tasks are timed under `durability: fast` (the check's own SQL and JS cost; under strict the
 * audit intent's fsync dominates every write, see the cap benchmark). Sizes are measured round-robin.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DEMO_POLICY_YAML } from '../../dist/policy/demo.js';
import { parsePolicy } from '../../dist/policy/load.js';
import { BudgetStore } from '../../dist/store/sqlite/budget-store.js';
import { openDb, setDurability } from '../../dist/store/sqlite/db.js';

const FILL_TASKS = `
WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < @n)
INSERT INTO tasks (task_key, principal, source, id, started_at, last_call_at, calls, result_bytes, streak)
SELECT 'helpdesk-agent' || char(0) || 'meta' || char(0) || 'open-' || x, 'helpdesk-agent', 'meta', 'open-' || x,
       @now - 600000, @now - (x % 600000), 5, 20000, 0
  FROM c`;
const FILL_IDENTICAL = `
INSERT INTO task_identical (task_key, task_started, sig, count, seen_at)
SELECT task_key, started_at, 'sig-' || k.k, 1, last_call_at FROM tasks, (SELECT 1 AS k UNION ALL SELECT 2 UNION ALL SELECT 3) k`;

function timeCalls(store, policy, size, iterations, offset) {
  const rules = policy.budgets;
  const bounds = {
    idleMs: policy.task.idleMinutes * 60_000,
    maxCalls: 1e9,
    maxMs: 86_400_000,
    maxResultBytes: 1e12,
    maxIdenticalCalls: 1e9,
    maxConsecutiveFailures: 1e9,
  };
  const us = [];
  for (let i = 0; i < iterations; i++) {
    // Half the calls join an existing open task, half start a new one.
    const id = size && i % 2 ? `open-${1 + ((i * 7919 + offset) % size)}` : `new-${offset}-${i}`;
    const task = { source: 'meta', id };
    const now = Date.now();
    const t = performance.now();
    const r = store.admit({
      principal: 'helpdesk-agent',
      task,
      user: `https://idp.example.com sub:user-${i % 500}`,
      rules,
      sig: `q-${offset}-${i}`,
      polling: false,
      bounds,
      trippedTasksPerHour: 1e9,
      now,
    });
    if (!r.ok) throw new Error(`admission refused during the benchmark: ${JSON.stringify(r)}`);
    store.settle({ principal: 'helpdesk-agent', task, user: undefined, rules, failed: false, resultBytes: 800, now });
    us.push((performance.now() - t) * 1000);
  }
  return us;
}

export async function taskScale({ sizes = [0, 100_000], rounds = 4, iterations = 1000, progress = () => {} } = {}) {
  const dir = mkdtempSync(join(tmpdir(), 'itguard-bench-tasks-'));
  const policy = parsePolicy(DEMO_POLICY_YAML);
  // The windowed budgets raised out of the way (each call still reserves and settles on all three).
  const raised = { ...policy, budgets: policy.budgets.map((b) => ({ ...b, limit: 1e12, alarmAt: undefined })) };
  const dbs = [];
  try {
    for (const size of sizes) {
      const db = openDb(join(dir, `tasks-${size}.db`), { durability: 'fast' });
      const s = performance.now();
      if (size) {
        db.transaction(() => {
          db.prepare(FILL_TASKS).run({ n: size, now: Date.now() });
          db.prepare(FILL_IDENTICAL).run();
        })();
        progress(
          `  ${size.toLocaleString('en-US')} open tasks filled in ${((performance.now() - s) / 1000).toFixed(1)} s`,
        );
      }
      setDurability(db, 'fast');
      dbs.push({ size, db, store: new BudgetStore(db, 'UTC'), us: [] });
    }
    for (const d of dbs) timeCalls(d.store, raised, d.size, 50, -1); // warm the statements and the file cache
    for (let r = 0; r < rounds; r++)
      for (const d of dbs) d.us.push(...timeCalls(d.store, raised, d.size, iterations, r * iterations));
    return dbs.map(({ size, us, db }) => ({
      size,
      us,
      open: db.prepare('SELECT count(*) AS n FROM tasks').get().n,
    }));
  } finally {
    for (const d of dbs) d.db.close();
    rmSync(dir, { recursive: true, force: true });
  }
}
