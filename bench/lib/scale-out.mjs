/**
 * Scale-out (DESIGN §9, issue 19): itguard with 1, 2 (and, where the machine has more than two cores, 3) server
 * processes on ONE SQLite database file, the load process spreading its sessions evenly over them as a balancer
 * would (session s to process s mod N). Same load shape as benchmarks 1 and 2. Each round starts a new database
 * and new processes; the process counts alternate within a round (1, 2, 3, 1, 2, 3, …) so drift on the machine
 * hits all alike. Per N: the median over rounds of calls/s, of latency p50/p99, of server CPU per call (summed over
 * the N processes), of the unit committers' commits per second (summed) and calls per commit; and how busy the
 * machine's cores were (servers + load process), to tell a CPU limit from the store's single write lock.
 */
import { fork } from 'node:child_process';
import { closeSync, mkdtempSync, openSync, rmSync } from 'node:fs';
import { cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { median, percentile } from './stats.mjs';
import { cpuOf, once, start, stop } from './throughput.mjs';

const here = (f) => fileURLToPath(new URL(f, import.meta.url));
const cpuUs = (u) => u.user + u.system;
/** The machine's busy and total CPU time so far (ms, summed over its cores): every process on it, not only ours. */
export function machineCpu() {
  let busy = 0;
  let total = 0;
  for (const { times: t } of cpus()) {
    busy += t.user + t.nice + t.sys + t.irq;
    total += t.user + t.nice + t.sys + t.irq + t.idle;
  }
  return { busy, total };
}

/** The process counts measured: 1 and 2, and 3 where the machine has more than two cores. */
export const scaleCounts = () => (cpus().length > 2 ? [1, 2, 3] : [1, 2]);

/** One round: N itguard processes on one new database, one load process over all of them. */
export async function scaleRound(tool, n, load, tag) {
  const dir = mkdtempSync(join(tmpdir(), `itguard-bench-scale${n}-`));
  const errFd = openSync(join(dir, 'server.stderr'), 'w');
  const db = join(dir, 'bench.db');
  const children = [];
  try {
    const fronts = [];
    // One after the other: the first creates, migrates and seeds the file; the others open it as it is.
    for (let i = 0; i < n; i++) {
      const server = start('./server-child.mjs', ['guarded', tool, db], errFd, []);
      children.push(server.child);
      fronts.push(await server.ready);
    }
    const client = fork(here('./load-child.mjs'), [], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
    const done = once(client, 'done');
    const marks = {};
    client.on('message', (m) => {
      if (m?.type === 'mark') marks[m.at] = { load: m.usage, machine: machineCpu(), servers: cpuOf(children) };
    });
    client.send({ urls: fronts.map((f) => f.url), tokens: fronts.map((f) => f.token), tool, tag, ...load });
    const r = await done;
    const [s0, s1] = await Promise.all([marks.start.servers, marks.stop.servers]);
    if (r.errors)
      throw new Error(
        `scale ${n} ${tool}: ${r.errors} failed calls (first: ${r.firstError}); see ${join(dir, 'server.stderr')}`,
      );
    const wallMs = s1.at - s0.at;
    const serverUs = s1.us - s0.us;
    const commits = s1.commits - s0.commits;
    return {
      n,
      rate: r.calls / r.seconds,
      calls: r.calls,
      p50: percentile(r.latencies, 50),
      p99: percentile(r.latencies, 99),
      cpuUsPerCall: serverUs / r.calls,
      // Cores' worth of CPU in the measured window: the N servers summed, and the load process.
      serverCores: serverUs / 1000 / wallMs,
      loadCores: (cpuUs(marks.stop.load) - cpuUs(marks.start.load)) / 1000 / wallMs,
      // The whole machine's (anything else running included), in cores.
      machineCores:
        ((marks.stop.machine.busy - marks.start.machine.busy) /
          (marks.stop.machine.total - marks.start.machine.total)) *
        cpus().length,
      commitsPerS: commits / (wallMs / 1000),
      callsPerCommit: commits ? r.calls / commits : NaN,
      // Seconds per second the processes spent in group commits (waiting for the write lock, writing, fsyncing),
      // summed: near 1 (or above, with waits) the single write lock is the limit.
      commitShare: (s1.commitMs - s0.commitMs) / wallMs,
      commitMsEach: commits ? (s1.commitMs - s0.commitMs) / commits : NaN,
    };
  } finally {
    for (const c of children) await stop(c);
    closeSync(errFd);
    rmSync(dir, { recursive: true, force: true });
  }
}

/**
 * Every process count, `rounds` times, alternating; per N the medians over rounds, and the median of the per-round
 * ratios of N processes' calls/s to 1 process's.
 */
export async function scaleOut(tool, load, rounds, progress, counts = scaleCounts()) {
  const byN = new Map(counts.map((n) => [n, []]));
  for (let i = 0; i < rounds; i++) {
    for (const n of counts) {
      const r = await scaleRound(tool, n, load, `scale${n}r${i}`);
      byN.get(n).push(r);
      progress(
        `  ${tool} ${n} process${n > 1 ? 'es' : '  '} round ${i + 1}/${rounds}: ${r.rate.toFixed(0)} calls/s, ` +
          `${r.commitsPerS.toFixed(0)} commits/s (${r.callsPerCommit.toFixed(1)} calls/commit, ${r.commitMsEach.toFixed(2)} ms each, ` +
          `in commits ${(r.commitShare * 100).toFixed(0)}% of the time), server CPU ` +
          `${r.cpuUsPerCall.toFixed(0)} µs/call, cores busy ${r.serverCores.toFixed(2)} servers + ${r.loadCores.toFixed(2)} load ` +
          `(machine ${r.machineCores.toFixed(2)} of ${cpus().length}) ` +
          `(p50 ${r.p50.toFixed(1)} ms, p99 ${r.p99.toFixed(1)} ms)`,
      );
    }
  }
  const one = byN.get(counts[0]);
  const med = (rs, k) => median(rs.map((r) => r[k]));
  const keys = [
    'rate',
    'p50',
    'p99',
    'cpuUsPerCall',
    'serverCores',
    'loadCores',
    'machineCores',
    'commitsPerS',
    'callsPerCommit',
    'commitShare',
    'commitMsEach',
  ];
  const rows = counts.map((n) => {
    const rs = byN.get(n);
    const ratios = rs.map((r, i) => r.rate / one[i].rate);
    return {
      n,
      rounds: rs.map((r) => r.rate),
      ...Object.fromEntries(keys.map((k) => [k, med(rs, k)])),
      ratios,
      ratio: median(ratios),
    };
  });
  return { tool, cores: cpus().length, rows };
}

/**
 * Where the limit is, from the 1- and 2-process rows (medians over rounds). The store's single write lock when the
 * processes together spend (nearly) all the time in group commits — one commit at a time across all of them, so
 * a second process splits the batches (fewer calls per commit) and waits for the other's; else CPU when the
 * machine's cores are (nearly) all busy — ours (servers + load process) or anything else running — so a process
 * added shares cores rather than adding them; else neither is saturated.
 */
export function scaleLimit(s) {
  const one = s.rows.find((x) => x.n === 1);
  const two = s.rows.find((x) => x.n === 2) ?? s.rows[s.rows.length - 1];
  const ours = two.serverCores + two.loadCores;
  const pct = (x) => `${(x * 100).toFixed(0)}%`;
  const limit = two.commitShare >= 0.8 ? 'write lock' : two.machineCores >= 0.85 * s.cores ? 'CPU' : 'neither';
  const lock =
    `the unit committers took the write lock ${one.commitsPerS.toFixed(0)} → ${two.commitsPerS.toFixed(0)} times/s ` +
    `at ${one.callsPerCommit.toFixed(1)} → ${two.callsPerCommit.toFixed(1)} calls per commit, ` +
    `${one.commitMsEach.toFixed(2)} → ${two.commitMsEach.toFixed(2)} ms per commit, in commits ` +
    `${pct(one.commitShare)} → ${pct(two.commitShare)} of the time (1 → ${two.n} processes)`;
  const cores =
    `${two.machineCores.toFixed(2)} of ${s.cores} cores busy with ${two.n} processes ` +
    `(servers ${two.serverCores.toFixed(2)}, load ${two.loadCores.toFixed(2)}` +
    `${two.machineCores - ours > 0.25 ? `, other work on the machine ${(two.machineCores - ours).toFixed(2)}` : ''})`;
  const head = {
    'write lock': "the store's single write lock",
    CPU: 'CPU, not the store',
    neither: 'neither the write lock nor CPU saturated',
  }[limit];
  return { limit, text: `${head}: ${limit === 'write lock' ? `${lock}; ${cores}` : `${cores}; ${lock}`}` };
}
