/**
 * Cap and budget checks on PostgreSQL as the tables grow (issue 20; benchmarks 5 and 7 on the other store): one
 * database per size on the bench's PostgreSQL server, each migrated, then filled with `size` rows in each of the
 * tables a check could slow down on — audit (a chain of valid-looking records), cap_usage and budget_usage (past
 * windows, many scopes), tasks (open tasks, idle less than ten minutes) and task_identical (one row per task) — by
 * INSERT … SELECT over generate_series, then VACUUM ANALYZE and a CHECKPOINT (so the measurement does not share the
 * disk with the fill's write-back and the planner knows the sizes, as autovacuum would see to in production).
 *
 * At each size, timed through the production code (PgCaps, PgBudgets, each unit committed by PgUnitRunner):
 *  - cap check: CapsPort.reserve of the demo policy's two ticket_create cap rules in one unit, then release in a
 *    second (the pair a refused or failed write does);
 *  - budget check: BudgetsPort.admit in one unit (task row, breaker, the three windowed budgets, the identical-call
 *    count) and settle in a second; half the calls join an open task, half start a new one.
 * Twice each: on a pool whose commits wait for the WAL flush (synchronous_commit on: "durable") and on one whose
 * commits do not (`synchronous_commit=off` for its connections: "fast", the checks' own SQL, round trips and JS,
 * which decides the verdict as on SQLite). Sizes are measured round-robin so drift hits all alike.
 */
import postgres from 'postgres';
import { DEMO_POLICY_YAML } from '../../dist/policy/demo.js';
import { parsePolicy } from '../../dist/policy/load.js';
import { openPg } from '../../dist/store/postgres/connect.js';
import { migratePg } from '../../dist/store/postgres/migrations.js';
import { PgBudgets, PgCaps, PgUnitRunner } from '../../dist/store/postgres/ports.js';
import { UnitOfWork } from '../../dist/store/unit.js';
import { REQUESTERS } from './workload.mjs';

const HOUR = 3_600_000;
const OWNER = 'bench-pg-scale';

/** The fills: `$1` rows, `$2` now (ms), `$3` the current hour's start (integers, written into the text). Keys in the store's form (pgKey: NUL as `\0`). */
const FILLS = [
  [
    'audit',
    // The chain's triggers are off for the fill (session_replication_role, superuser): the rows link by construction.
    `INSERT INTO audit (seq, ts, event, trace_id, actor, session_id, tool, args, args_sha256, outcome, code, detail,
                        prev_hash, hash, on_behalf_of, task_id)
     SELECT x, $2::BIGINT - 60 * 86400000::BIGINT + x * 50,
            CASE x % 2 WHEN 1 THEN 'call.intent' ELSE 'call.outcome' END,
            md5(x::TEXT), 'helpdesk-agent', 'sess-' || (x / 40), 'ticket_create',
            '{"priority":"medium","requester":"dkim","summary":"Laptop fan is loud #' || (x / 2) || '"}',
            md5('a' || x) || md5('b' || x),
            CASE x % 2 WHEN 1 THEN NULL ELSE 'ok' END, NULL,
            '{"started_at":' || ($2::BIGINT - 60 * 86400000::BIGINT + x * 50) || '}',
            lpad(to_hex(x - 1), 64, '0'), lpad(to_hex(x), 64, '0'), NULL, 'open-' || (x / 40)
       FROM generate_series(1, $1::BIGINT) x`,
  ],
  [
    'cap_usage',
    // Past hours of the per-requester cap, 1,000 requesters an hour.
    `INSERT INTO cap_usage (tool, rule, scope_key, window_start, used, alarmed)
     SELECT 'ticket_create', 'tickets-per-requester', 'req-' || (x % 1000), $3::BIGINT - (x / 1000 + 1) * ${HOUR}, 3, 0
       FROM generate_series(0, $1::BIGINT - 1) x`,
  ],
  [
    'budget_usage',
    // The per-user budget over the last 40 hours (the store prunes windows older than two days), many users.
    `INSERT INTO budget_usage (rule, scope_key, window_start, used, alarmed)
     SELECT 'user-calls-per-hour', 'user\\0https://idp.example.com sub:old-' || (x / 40), $3::BIGINT - (x % 40 + 1) * ${HOUR}, 7, 0
       FROM generate_series(0, $1::BIGINT - 1) x`,
  ],
  [
    'tasks',
    `INSERT INTO tasks (task_key, principal, source, id, started_at, last_call_at, calls, result_bytes, streak)
     SELECT 'helpdesk-agent\\0meta\\0open-' || x, 'helpdesk-agent', 'meta', 'open-' || x,
            $2::BIGINT - 600000, $2::BIGINT - (x % 600000), 5, 20000, 0
       FROM generate_series(1, $1::BIGINT) x`,
  ],
  [
    'task_identical',
    `INSERT INTO task_identical (task_key, task_started, sig, count, seen_at)
     SELECT task_key, started_at, 'sig-1', 1, last_call_at FROM tasks`,
  ],
];

/** Fills every table with `size` rows on a connection of its own (no statement timeout: a large fill takes a while). */
async function fill(url, size, now) {
  if (!size) return;
  const sql = postgres(url, { max: 1, onnotice: () => {} });
  const hour = now - (now % HOUR);
  try {
    await sql.begin(async (tx) => {
      await tx.unsafe('SET LOCAL session_replication_role = replica');
      for (const [, text] of FILLS)
        await tx.unsafe(
          text.replaceAll('$1', String(size)).replaceAll('$2', String(now)).replaceAll('$3', String(hour)),
        );
      await tx.unsafe(`UPDATE audit_head SET seq = ${size}, hash = lpad(to_hex(${size}), 64, '0') WHERE id = 1`);
    });
    for (const [table] of FILLS) await sql.unsafe(`VACUUM ANALYZE ${table}`);
    await sql.unsafe('CHECKPOINT');
    for (const [table] of FILLS) {
      const [{ n }] = await sql.unsafe(`SELECT count(*)::INTEGER AS n FROM ${table}`);
      if (n !== size) throw new Error(`expected ${size} rows in ${table}, found ${n}`);
    }
  } finally {
    await sql.end({ timeout: 5 });
  }
}

/** Commits one unit of one operation through `runner` and returns the operation's value. */
async function inUnit(runner, kind, op) {
  const u = new UnitOfWork(kind);
  const p = u.add(op);
  await runner.commit(u);
  return p;
}

async function timeCaps(d, runner, rules, iterations) {
  const us = [];
  for (let i = 0; i < iterations; i++) {
    const requester = REQUESTERS[i % REQUESTERS.length];
    const demands = rules.map((rule) => ({ rule, scopeKey: rule.per === 'requester' ? requester : '*', amount: 1 }));
    const t = performance.now();
    const r = await inUnit(runner, 'admission', (tx) => d.caps.reserve(tx, demands, Date.now()));
    if (!r.ok) throw new Error(`cap ${r.rule?.name ?? r.reason} refused during the benchmark`);
    await inUnit(runner, 'settlement', (tx) => d.caps.release(tx, r.items));
    us.push((performance.now() - t) * 1000);
  }
  return us;
}

async function timeBudgets(d, runner, policy, iterations, offset) {
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
    const id = d.size && i % 2 ? `open-${1 + ((i * 7919 + offset) % d.size)}` : `new-${offset}-${i}`;
    const call = {
      principal: 'helpdesk-agent',
      task: { source: 'meta', id },
      user: `https://idp.example.com sub:user-${i % 500}`,
    };
    const now = Date.now();
    const t = performance.now();
    const r = await inUnit(runner, 'admission', (tx) =>
      d.budgets.admit(tx, {
        ...call,
        rules: policy.budgets,
        sig: `q-${offset}-${i}`,
        polling: false,
        bounds,
        trippedTasksPerHour: 1e9,
        now,
      }),
    );
    if (!r.ok) throw new Error(`admission refused during the benchmark: ${JSON.stringify(r)}`);
    await inUnit(runner, 'settlement', (tx) =>
      d.budgets.settle(tx, { ...call, rules: policy.budgets, failed: false, resultBytes: 800, now }),
    );
    us.push((performance.now() - t) * 1000);
  }
  return us;
}

/**
 * Per size: µs per cap pair and per budget pair, durable and fast. Returns [{ size, caps: {durable, fast}, budgets:
 * {durable, fast}, fillS }].
 */
export async function pgScale(
  pg,
  {
    sizes = [0, 100_000, 1_000_000],
    rounds = 3,
    durableIterations = 100,
    fastIterations = 300,
    progress = () => {},
  } = {},
) {
  const demo = parsePolicy(DEMO_POLICY_YAML);
  const rules = demo.tools.ticket_create.caps;
  // The windowed budgets raised out of the way (each call still reserves and settles on all three).
  const policy = { ...demo, budgets: demo.budgets.map((b) => ({ ...b, limit: 1e12, alarmAt: undefined })) };
  const dbs = [];
  try {
    for (const size of sizes) {
      const name = `bench_scale_${size}`;
      const url = await pg.createDatabase(name);
      const durable = openPg(url, { max: 2 });
      const fast = openPg(`${url}?synchronous_commit=off`, { max: 2 });
      const d = {
        size,
        name,
        pools: [durable, fast],
        durable: new PgUnitRunner(durable),
        fast: new PgUnitRunner(fast),
        caps: new PgCaps(durable, 'UTC', OWNER),
        budgets: new PgBudgets(durable, 'UTC'),
        out: { size, caps: { durable: [], fast: [] }, budgets: { durable: [], fast: [] } },
      };
      dbs.push(d);
      await migratePg(durable);
      await d.durable.checkKey(); // records the key's fingerprint before the chain is filled
      const s = performance.now();
      await fill(url, size, Date.now());
      d.out.fillS = (performance.now() - s) / 1000;
      if (size)
        progress(
          `  PostgreSQL: ${size.toLocaleString('en-US')} rows in each of ${FILLS.map((f) => f[0]).join(', ')} in ${d.out.fillS.toFixed(1)} s`,
        );
    }
    for (const d of dbs) {
      // Warm the connections, prepared statements and cache.
      await timeCaps(d, d.fast, rules, 20);
      await timeBudgets(d, d.fast, policy, 20, -1);
    }
    for (let r = 0; r < rounds; r++)
      for (const d of dbs) {
        d.out.caps.durable.push(...(await timeCaps(d, d.durable, rules, durableIterations)));
        d.out.caps.fast.push(...(await timeCaps(d, d.fast, rules, fastIterations)));
        d.out.budgets.durable.push(...(await timeBudgets(d, d.durable, policy, durableIterations, r * 2 * 1e6)));
        d.out.budgets.fast.push(...(await timeBudgets(d, d.fast, policy, fastIterations, (r * 2 + 1) * 1e6)));
      }
    for (const d of dbs) {
      const [{ n }] = await d.pools[0].sql`SELECT count(*)::BIGINT AS n FROM tasks`;
      d.out.tasksAtEnd = n;
    }
    return dbs.map((d) => d.out);
  } finally {
    for (const d of dbs) {
      await Promise.all(d.pools.map((p) => p.close().catch(() => undefined)));
      await pg.dropDatabase(d.name).catch(() => undefined);
    }
  }
}
