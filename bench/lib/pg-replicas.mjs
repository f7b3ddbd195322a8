/**
 * PostgreSQL replicas (issue 20): itguard with 1, 2 and 3 replica processes (`store: { kind: postgres }`, server-child
 * mode `pg`) on ONE PostgreSQL database, the load process spreading its sessions over them as a balancer would
 * (session s to replica s mod N), beside the bare SDK server (on its SQLite file, as in benchmarks 1 and 2) measured
 * in the same round. Same load shape as benchmarks 1 and 2. Each round, per tool: the bare server, then N = 1, 2, 3
 * replicas, each N on a new database (the N replicas start at once: one migrates and seeds it, the others wait).
 *
 * Per row, over the measured window: calls/s, latency p50/p99, the replicas' CPU per call (summed), PostgreSQL's own
 * CPU per call (the postmaster and all its processes, from /proc), the units the replicas committed per call and the
 * wall time each took (BEGIN to COMMIT's answer, the WAL flush included), units re-run after a serialization failure
 * or deadlock, WAL bytes per call (pg_current_wal_insert_lsn at the window's edges), and how many cores were busy:
 * replicas, PostgreSQL, the load process, the whole machine. Everything shares this machine's cores.
 */
import { fork } from 'node:child_process';
import { closeSync, mkdtempSync, openSync, readFileSync, rmSync } from 'node:fs';
import { cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import postgres from 'postgres';
import { pgCpuUs } from './pg.mjs';
import { machineCpu } from './scale-out.mjs';
import { median, percentile } from './stats.mjs';
import { once, oneRound, start, stop } from './throughput.mjs';

const here = (f) => fileURLToPath(new URL(f, import.meta.url));
const cpuUs = (u) => u.user + u.system;
export const PG_COUNTS = [1, 2, 3];

/** The replicas' CPU and unit-runner counters at one instant, summed. */
async function replicaSample(children) {
  const s = await Promise.all(children.map((c) => (c.send({ type: 'cpu' }), once(c, 'cpu'))));
  const sum = (f) => s.reduce((n, m) => n + f(m), 0);
  return {
    at: s[0].at,
    us: sum((m) => cpuUs(m.usage)),
    units: sum((m) => m.commits?.n ?? 0),
    unitMs: sum((m) => m.commits?.ms ?? 0),
    retries: sum((m) => m.commits?.retries ?? 0),
  };
}

/**
 * What the database's connections are doing, sampled every 100 ms from `start` until `stop()`: per sample, the
 * connections to this database running a statement, waiting on a lock (row locks: the audit head, cap and budget
 * rows), waiting on I/O (the WAL flush among them), idle inside a transaction (waiting for the replica's next
 * statement) and idle; returns the means.
 */
function sampleActivity(probe) {
  const samples = [];
  let on = true;
  const loop = (async () => {
    while (on) {
      const [x] = await probe`
        SELECT count(*) FILTER (WHERE state = 'active' AND wait_event_type IS NULL)::INTEGER AS running,
               count(*) FILTER (WHERE state = 'active' AND wait_event_type = 'Lock')::INTEGER AS lock,
               count(*) FILTER (WHERE state = 'active' AND wait_event_type IN ('IO', 'LWLock'))::INTEGER AS io,
               count(*) FILTER (WHERE state = 'idle in transaction')::INTEGER AS idle_in_tx,
               count(*) FILTER (WHERE state = 'idle')::INTEGER AS idle
          FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()`;
      samples.push(x);
      await new Promise((r) => setTimeout(r, 100));
    }
  })();
  loop.catch(() => undefined);
  return async () => {
    on = false;
    await loop;
    const mean = (k) => samples.reduce((n, x) => n + x[k], 0) / (samples.length || NaN);
    return Object.fromEntries(['running', 'lock', 'io', 'idle_in_tx', 'idle'].map((k) => [k, mean(k)]));
  };
}

/** One round: N replicas on a new database of `pg`, one load process over all of them. */
export async function pgRound(pg, tool, n, load, tag) {
  const name = `bench_${tag}`.toLowerCase().replace(/[^a-z0-9_]/g, '_');
  const url = await pg.createDatabase(name);
  const dir = mkdtempSync(join(tmpdir(), `itguard-bench-pg${n}-`));
  const errPath = join(dir, 'server.stderr');
  const errFd = openSync(errPath, 'w');
  const children = [];
  const probe = postgres(url, { max: 1, onnotice: () => {} });
  const failed = (what) => new Error(`${what}; replicas' stderr:\n${readFileSync(errPath, 'utf8').slice(-3000)}`);
  try {
    // All at once, as replicas start behind a balancer: one applies the migrations under the advisory lock and
    // seeds the demo data, the others wait for the lock and find the database ready.
    const started = Array.from({ length: n }, (_, i) =>
      start('./server-child.mjs', ['pg', tool, join(dir, 'unused.db')], errFd, [], {
        ITGUARD_PG_URL: url,
        ITGUARD_REPLICA_ID: `r${i + 1}`,
      }),
    );
    children.push(...started.map((s) => s.child));
    const fronts = await Promise.all(started.map((s) => s.ready)).catch((e) =>
      Promise.reject(failed(`a replica did not start (${e.message})`)),
    );
    const client = fork(here('./load-child.mjs'), [], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
    const done = once(client, 'done');
    const marks = {};
    let activity;
    client.on('message', (m) => {
      if (m?.type !== 'mark') return;
      const replicas = replicaSample(children);
      const wal = probe`SELECT pg_current_wal_insert_lsn()::TEXT AS lsn`.then(([x]) => x.lsn);
      // Awaited after the load is done; a failure before that must not be an unhandled rejection.
      for (const p of [replicas, wal]) p.catch(() => undefined);
      marks[m.at] = { load: m.usage, machine: machineCpu(), pgUs: pgCpuUs(pg.pid), replicas, wal };
      if (m.at === 'start') activity = sampleActivity(probe);
      else activity = activity?.();
    });
    client.send({ urls: fronts.map((f) => f.url), tokens: fronts.map((f) => f.token), tool, tag, ...load });
    const r = await done;
    if (r.errors) throw failed(`pg ${n} ${tool}: ${r.errors} failed calls (first: ${r.firstError})`);
    const [s0, s1, w0, w1, conns] = await Promise.all([
      marks.start.replicas,
      marks.stop.replicas,
      marks.start.wal,
      marks.stop.wal,
      activity,
    ]);
    const wallMs = s1.at - s0.at;
    const units = s1.units - s0.units;
    const pgUs = marks.stop.pgUs - marks.start.pgUs;
    return {
      n,
      rate: r.calls / r.seconds,
      calls: r.calls,
      p50: percentile(r.latencies, 50),
      p99: percentile(r.latencies, 99),
      cpuUsPerCall: (s1.us - s0.us) / r.calls,
      pgUsPerCall: pgUs / r.calls,
      unitsPerCall: units / r.calls,
      msPerUnit: units ? (s1.unitMs - s0.unitMs) / units : NaN,
      retries: s1.retries - s0.retries,
      walBytesPerCall: (lsnBytes(w1) - lsnBytes(w0)) / r.calls,
      // Audit-appending units committed per second (every unit of a call appends records but a read's admission):
      // with the head row locked by one at a time, 1000 / this is the longest the head can have been held per unit.
      unitsPerS: units / (wallMs / 1000),
      conns,
      replicaCores: (s1.us - s0.us) / 1000 / wallMs,
      pgCores: pgUs / 1000 / wallMs,
      loadCores: (cpuUs(marks.stop.load) - cpuUs(marks.start.load)) / 1000 / wallMs,
      machineCores:
        ((marks.stop.machine.busy - marks.start.machine.busy) /
          (marks.stop.machine.total - marks.start.machine.total)) *
        cpus().length,
    };
  } finally {
    for (const c of children) await stop(c);
    await probe.end({ timeout: 5 });
    closeSync(errFd);
    rmSync(dir, { recursive: true, force: true });
    await pg.dropDatabase(name);
  }
}

/** A WAL position (`16/B374D848`) as a byte offset. */
const lsnBytes = (lsn) => {
  const [hi, lo] = lsn.split('/').map((h) => parseInt(h, 16));
  return hi * 2 ** 32 + lo;
};

const KEYS = [
  'rate',
  'p50',
  'p99',
  'cpuUsPerCall',
  'pgUsPerCall',
  'unitsPerCall',
  'msPerUnit',
  'retries',
  'walBytesPerCall',
  'unitsPerS',
  'replicaCores',
  'pgCores',
  'loadCores',
  'machineCores',
];

/**
 * Every tool, `rounds` times: the bare server, then each replica count, alternating within a round. Per tool: the
 * bare server's rounds and per N the medians over rounds, the median of the per-round ratios to N = 1 and to the
 * same round's bare server.
 */
export async function pgReplicas(pg, { load, rounds, counts = PG_COUNTS, progress = () => {} }) {
  const out = { cores: cpus().length, counts };
  for (const [key, tool] of [
    ['write', 'ticket_create'],
    ['read', 'kb_search'],
  ]) {
    const bare = [];
    const byN = new Map(counts.map((n) => [n, []]));
    for (let i = 0; i < rounds; i++) {
      const b = await oneRound('bare', tool, load, `pgbare${i}`);
      bare.push(b);
      progress(
        `  ${tool} bare SDK   round ${i + 1}/${rounds}: ${b.rate.toFixed(0)} calls/s, server CPU ${b.cpuUsPerCall.toFixed(0)} µs/call (p50 ${b.p50.toFixed(1)} ms, p99 ${b.p99.toFixed(1)} ms)`,
      );
      for (const n of counts) {
        const x = await pgRound(pg, tool, n, load, `${key}${n}r${i}`);
        byN.get(n).push(x);
        progress(
          `  ${tool} ${n} replica${n > 1 ? 's' : ' '} round ${i + 1}/${rounds}: ${x.rate.toFixed(0)} calls/s, ` +
            `CPU/call replicas ${x.cpuUsPerCall.toFixed(0)} µs + PostgreSQL ${x.pgUsPerCall.toFixed(0)} µs, ` +
            `${x.unitsPerCall.toFixed(2)} units/call at ${x.msPerUnit.toFixed(2)} ms each (${x.retries} re-run), ` +
            `WAL ${(x.walBytesPerCall / 1024).toFixed(1)} KiB/call, connections: ${x.conns.running.toFixed(1)} running, ` +
            `${x.conns.lock.toFixed(1)} waiting on a lock, ${x.conns.io.toFixed(1)} on I/O, ${x.conns.idle_in_tx.toFixed(1)} idle in a transaction; cores busy ${x.replicaCores.toFixed(2)} replicas + ` +
            `${x.pgCores.toFixed(2)} PostgreSQL + ${x.loadCores.toFixed(2)} load (machine ${x.machineCores.toFixed(2)} of ${cpus().length}) ` +
            `(p50 ${x.p50.toFixed(1)} ms, p99 ${x.p99.toFixed(1)} ms)`,
        );
      }
    }
    const one = byN.get(counts[0]);
    const rows = counts.map((n) => {
      const rs = byN.get(n);
      const ratios = rs.map((x, i) => x.rate / one[i].rate);
      const vsBare = rs.map((x, i) => x.rate / bare[i].rate);
      return {
        n,
        rounds: rs.map((x) => x.rate),
        ...Object.fromEntries(KEYS.map((k) => [k, median(rs.map((x) => x[k]))])),
        conns: Object.fromEntries(Object.keys(rs[0].conns).map((k) => [k, median(rs.map((x) => x.conns[k]))])),
        ratios,
        ratio: median(ratios),
        vsBare,
        ratioBare: median(vsBare),
      };
    });
    out[key] = {
      tool,
      bare: {
        rate: median(bare.map((b) => b.rate)),
        rounds: bare.map((b) => b.rate),
        p50: median(bare.map((b) => b.p50)),
        p99: median(bare.map((b) => b.p99)),
        cpuUsPerCall: median(bare.map((b) => b.cpuUsPerCall)),
      },
      rows,
    };
  }
  return out;
}
