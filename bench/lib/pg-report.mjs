/** The PostgreSQL part (benchmarks 8 and 9) in the summary table and docs/benchmarks.md; kept apart from report.mjs. */
import { fmt, median, percentile } from './stats.mjs';

const n0 = (x) => fmt(x, 0);
const rows0 = (xs) => xs.map(n0).join(', ');
const table = (header, rows) =>
  [
    `| ${header.join(' | ')} |`,
    `| ${header.map(() => '---').join(' | ')} |`,
    ...rows.map((r) => `| ${r.join(' | ')} |`),
  ].join('\n');

/** Summary rows: the two checks' flatness (with verdicts, as on SQLite) and the replicas (informational). */
export function pgRows(r) {
  const rows = [];
  if (r.pg)
    for (const [key, label] of [
      ['write', 'Write'],
      ['read', 'Read'],
    ]) {
      const t = r.pg[key];
      if (!t) continue;
      const one = t.rows[0];
      const last = t.rows[t.rows.length - 1];
      rows.push({
        name: `${label} (${t.tool}) on PostgreSQL, ${t.rows.map((x) => x.n).join('/')} replicas`,
        baseline: `bare SDK (SQLite): ${n0(t.bare.rate)} calls/s`,
        itguard: t.rows.map((x) => `${x.n}: ${n0(x.rate)}`).join(', ') + ' calls/s',
        result: `${last.n} vs 1: ${fmt(last.ratio, 2)}×; 1 vs bare: ${fmt(one.ratioBare, 2)}×`,
        target: 'informational',
        ok: true,
        info: true,
      });
    }
  if (r.pgScale) {
    const first = r.pgScale[0];
    const last = r.pgScale[r.pgScale.length - 1];
    for (const [key, label] of [
      ['caps', 'Cap check on PostgreSQL (reserve+release, two units)'],
      ['budgets', 'Budget check on PostgreSQL (admit+settle, two units)'],
    ]) {
      const growth = median(last[key].fast) / median(first[key].fast);
      rows.push({
        name: `${label} at 0 → ${last.size.toLocaleString('en-US')} rows per table`,
        baseline: `0 rows: ${n0(median(first[key].fast))} µs`,
        itguard: `${last.size.toLocaleString('en-US')} rows: ${n0(median(last[key].fast))} µs`,
        result: `${fmt(growth, 2)}× (durable: ${n0(median(first[key].durable))} → ${n0(median(last[key].durable))} µs)`,
        target: 'flat (≤ 1.25×)',
        ok: growth <= 1.25,
      });
    }
  }
  return rows;
}

export const pgMeasures = `8. **PostgreSQL replicas** — \`node bench/run.mjs pg\`. A real PostgreSQL (15 or newer) started for the run on
   this machine, durable as in production (\`fsync\`, \`synchronous_commit\`, \`full_page_writes\` on: every commit
   waits for its WAL flush), on the same cores as everything else. itguard \`serve --http\` replicas (the bench policy
   with \`store: { kind: postgres, url_env: ITGUARD_PG_URL }\`) 1, 2 and 3 at a time on one new database per round,
   the load spread over them; the bare SDK server (on its SQLite file, as in 1 and 2) in the same round. Per row:
   calls/s, latency, the replicas' CPU per call and PostgreSQL's own (its processes' CPU time from /proc), the units
   of work committed per call and their wall time, WAL bytes per call. Then, at idle, in one process: the statements
   (round trips) each kind of call sends, per unit of work, and how long each unit takes and holds the audit chain's
   head; and a model, from those costs, of the calls/s at which the database — not the replicas — is the limit.
   Informational (no verdict): on two cores, replicas, PostgreSQL and the load share the same CPUs.
9. **Cap and budget checks on PostgreSQL vs table size** — the checks of 5 and 7 through the PostgreSQL adapter
   (PgCaps, PgBudgets, each unit committed by PgUnitRunner) on databases holding 0 … 1,000,000 rows in each of audit,
   cap_usage, budget_usage, tasks and task_identical (filled with generate_series). "fast" (commits not waiting
   for the WAL flush) decides the verdict; "durable" adds two flushes per pair. Target: flat (≤ 1.25×).`;

function replicasTable(pg) {
  const row = (t, x) => [
    t.tool,
    `${x.n} replica${x.n > 1 ? 's' : ''}`,
    n0(x.rate),
    rows0(x.rounds),
    x.n === 1 ? '—' : `${fmt(x.ratio, 2)}×`,
    `${fmt(x.ratioBare, 2)}×`,
    fmt(x.p50, 1),
    fmt(x.p99, 1),
    n0(x.cpuUsPerCall),
    n0(x.pgUsPerCall),
    fmt(x.unitsPerCall, 2),
    fmt(x.msPerUnit, 2),
    String(x.retries),
    fmt(x.walBytesPerCall / 1024, 1),
    x.conns
      ? `${fmt(x.conns.running, 1)} / ${fmt(x.conns.lock, 1)} / ${fmt(x.conns.io, 1)} / ${fmt(x.conns.idle_in_tx, 1)}`
      : '—',
    `${fmt(x.replicaCores, 2)} + ${fmt(x.pgCores, 2)} + ${fmt(x.loadCores, 2)} (${fmt(x.machineCores, 2)})`,
  ];
  const bare = (t) => [
    t.tool,
    'bare SDK (SQLite)',
    n0(t.bare.rate),
    rows0(t.bare.rounds),
    '—',
    '—',
    fmt(t.bare.p50, 1),
    fmt(t.bare.p99, 1),
    n0(t.bare.cpuUsPerCall),
    '—',
    '—',
    '—',
    '—',
    '—',
    '—',
    '—',
  ];
  const tools = [pg.write, pg.read].filter(Boolean);
  return table(
    [
      'tool',
      'server',
      'calls/s',
      'calls/s per round',
      'vs 1 replica',
      'vs bare',
      'latency p50 ms',
      'latency p99 ms',
      'replicas CPU µs/call (sum)',
      'PostgreSQL CPU µs/call',
      'units/call',
      'ms per unit',
      'units re-run',
      'WAL KiB/call',
      'connections: running / waiting on a lock / on I/O / idle in a transaction',
      'cores busy: replicas + PostgreSQL + load (machine)',
    ],
    tools.flatMap((t) => [bare(t), ...t.rows.map((x) => row(t, x))]),
  );
}

function roundTripsTable(rt) {
  const kinds = [
    ['read', 'read (kb_search)'],
    ['write', 'write (ticket_create)'],
    ['refused', 'refused write (ticket_create over its cap)'],
  ].filter(([k]) => rt.kinds[k]);
  const unitKinds = [...new Set(kinds.flatMap(([k]) => Object.keys(rt.kinds[k].units)))].sort();
  const unitCell = (u) =>
    u
      ? `${fmt(u.perCall, 0)} × ${fmt(u.stmts, 0)} stmts, ${fmt(u.ms, 2)} ms${u.auditShare ? `, head ${fmt(u.headMs, 2)} ms` : ''}`
      : '—';
  return table(
    [
      'call',
      'statements per call',
      'outside units',
      ...unitKinds.map((k) => `${k} units`),
      'audit-appending units/call',
      'audit head held ms/call',
      'call latency ms',
    ],
    kinds.map(([k, label]) => {
      const c = rt.kinds[k];
      return [
        label,
        fmt(c.stmts, 0),
        fmt(c.outside, 0),
        ...unitKinds.map((u) => unitCell(c.units[u])),
        fmt(c.auditUnitsPerCall, 0),
        fmt(c.headMsPerCall, 2),
        fmt(c.ms, 2),
      ];
    }),
  );
}

function modelSection(m) {
  const tools = ['write', 'read'].filter((k) => m[k]);
  if (!tools.length) return '';
  const head = tools.flatMap((k) => [
    `${m[k].tool}: database CPU ceiling calls/s`,
    `${m[k].tool}: ceiling, idle head hold (by)`,
    `${m[k].tool}: replicas (as measured here / on own cores)`,
    `${m[k].tool}: ceiling as loaded (by)`,
    `${m[k].tool}: replicas as loaded`,
  ]);
  const rows = m.cores.map((k, i) => [
    String(k),
    ...tools.flatMap((t) => {
      const x = m[t].rows[i];
      return [
        n0(x.cpu),
        `${n0(x.limit)} (${x.by})`,
        `${fmt(x.replicas, 1)} / ${fmt(x.replicasOwnCore, 1)}`,
        `${n0(x.loaded)} (${x.loadedBy})`,
        fmt(x.replicasLoaded, 1),
      ];
    }),
  ]);
  const line = (k) => {
    const x = m[k];
    return (
      `- **${x.tool}**: PostgreSQL spends **${n0(x.dbUs)} µs of CPU per call** with one replica ` +
      `(${rows0(x.dbUsAll)} µs with ${x.dbUsAll.map((_, i) => i + 1).join('/')} replicas), so one of its cores serves ` +
      `${n0(x.dbPerCore)} calls/s; a replica spends ${n0(x.replicaUs)} µs per call (${n0(x.replicaCore)} calls/s on a ` +
      `core of its own; ${n0(x.perReplica)} calls/s measured here, sharing the cores). A call sends ${fmt(x.stmts, 0)} ` +
      `statements and holds the audit head ${fmt(x.headMs, 2)} ms in ${fmt(x.auditUnitsPerCall, 0)} unit${x.auditUnitsPerCall === 1 ? '' : 's'}: ` +
      `**at most ${n0(x.chain)} calls/s across all replicas** over loopback, ${n0(x.chainRtt)} calls/s at a ` +
      `${fmt(m.rttMs, 1)} ms network round trip. ` +
      (Number.isFinite(x.chainLoaded)
        ? `Under the benchmark's load the head was the limit (${x.lockWaits.map((w) => fmt(w, 1)).join(' / ')} connections ` +
          `waiting on a lock on average with ${x.lockWaits.map((_, i) => i + 1).join('/')} replicas): **${n0(x.chainLoaded)} calls/s** at best.`
        : `Under the benchmark's load the connections were not mostly waiting on locks.`)
    );
  };
  return `#### Model: where the database becomes the limit

${tools.map(line).join('\n')}

${table(['PostgreSQL cores', ...head], rows)}

"Idle head hold" takes the audit head's hold per call measured at idle; "as loaded" takes the best rate measured
while most connections waited on a lock (the head then held as long as it did under that load: its holder waits for
its replica's next statement, and a busy replica answers late).

Assumptions: PostgreSQL's CPU per call is the one measured here with one replica (same CPU model) and scales linearly
with its cores; the replicas run on other machines (each needs the CPU per call above) and the load generator is not
counted; the audit head's hold per call is the idle one over loopback (under load a unit also waits for the lock, and
over a network each hold grows by about two round trips), and does not shrink with more cores — only a faster WAL
flush (the disk) or fewer audit-appending units per call raise it; WAL volume (KiB per call above) fits the disk's
bandwidth; each replica's pool holds up to 10 connections, so \`max_connections\` (100 here) allows about 9 replicas
before it must be raised or a pooler put in front. "Replicas as measured here" divides the ceiling by the calls/s
of one replica on this machine (which shares its cores with PostgreSQL and the load); "on own cores" by what one
replica does on one core of its own.
`;
}

function scaleTable(s) {
  const row = (c) => [
    c.size.toLocaleString('en-US'),
    fmt(median(c.caps.fast), 0),
    fmt(percentile(c.caps.fast, 99), 0),
    fmt(median(c.caps.durable), 0),
    fmt(median(c.budgets.fast), 0),
    fmt(percentile(c.budgets.fast, 99), 0),
    fmt(median(c.budgets.durable), 0),
    Number(c.tasksAtEnd).toLocaleString('en-US'),
  ];
  return table(
    [
      'rows per table',
      'cap pair fast median µs',
      'cap pair fast p99 µs',
      'cap pair durable median µs',
      'budget pair fast median µs',
      'budget pair fast p99 µs',
      'budget pair durable median µs',
      'task rows at end',
    ],
    s.map(row),
  );
}

export function pgSection(r, load, rounds) {
  const out = [];
  const info = r.pgInfo;
  if (r.pg) {
    const cores = r.pg.cores;
    out.push(`### 8. PostgreSQL replicas

PostgreSQL ${info?.version ?? '?'} started for the run in ${n0(info?.startMs ?? NaN)} ms (${Object.entries(
      info?.settings ?? {},
    )
      .filter(([k]) =>
        ['fsync', 'synchronous_commit', 'full_page_writes', 'shared_buffers', 'max_connections'].includes(k),
      )
      .map(([k, v]) => `\`${k}=${v}\``)
      .join(', ')}), **on the same ${cores} cores** as the replicas and the load process${
      cores <= 2 ? ' — with 3 replicas, PostgreSQL and the load, five busy processes share two cores' : ''
    }. ${load.sessions} sessions × ${load.inFlight} requests in flight spread over the replicas (session s to replica
s mod N), ${load.warmupMs / 1000} s warm-up then ${load.durationMs / 1000} s measured; ${rounds} round(s), each round the bare
server then 1, 2, 3 replicas on a new database. Values are medians over rounds; ratios are medians of per-round
ratios. "ms per unit" is the wall time of a unit's commit (BEGIN to COMMIT's answer, lock waits and the WAL flush
included); "units re-run" counts units PostgreSQL rolled back for a serialization failure or deadlock.

${replicasTable(r.pg)}
`);
  }
  if (r.pgRt) {
    const b = r.pgRt.base;
    out.push(`#### Store round trips per call (at idle)

One process on PostgreSQL, ${r.pgRt.samples} sequential calls per kind after a warm-up; every statement its pool sends
(BEGIN and COMMIT included) counted, per call and per unit of work (medians). Statements outside units are the
reads a call makes on the pool (token, idempotency record, views). A unit cell reads "units per call × statements
per unit, its wall time, and for audit-appending units how long it held the audit head".

${roundTripsTable(r.pgRt)}

Base costs on this server: a \`SELECT 1\` round trip ${fmt(b.selectMs, 3)} ms; a one-row INSERT transaction
${fmt(b.durableCommitMs, 2)} ms when its commit waits for the WAL flush and ${fmt(b.lazyCommitMs, 2)} ms when it does
not: **the WAL flush costs ${fmt(b.flushMs, 2)} ms** on this disk.
`);
  }
  if (r.pgModel) out.push(modelSection(r.pgModel));
  if (r.pgScale) {
    const c = r.pgScale[0];
    out.push(`### 9. Cap and budget checks on PostgreSQL vs table size

Each size its own database holding that many rows in each of audit, cap_usage, budget_usage, tasks and
task_identical (fill times: ${r.pgScale.map((x) => `${x.size.toLocaleString('en-US')}: ${fmt(x.fillS, 1)} s`).join(', ')}); ${c.caps.fast.length}
fast and ${c.caps.durable.length} durable pairs of each check per size, sizes round-robin. A pair is two units, each
its own transaction (reserve then release; admit then settle).

${scaleTable(r.pgScale)}
`);
  }
  return out.join('\n');
}
