/**
 * Benchmarks 1 and 2: guarded vs bare throughput of one tool over Streamable HTTP. Each round starts a fresh
 * database, a server process and a load process; bare and guarded alternate (bare, guarded, bare, guarded, …)
 * so drift on the machine hits both alike. Calls/s per side is the mean over its rounds; the ratio is the
 * median of the per-round-pair ratios.
 */
import { fork } from 'node:child_process';
import { mkdtempSync, openSync, rmSync, closeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { mean, median, percentile } from './stats.mjs';

const here = (f) => fileURLToPath(new URL(f, import.meta.url));

function once(child, type) {
  return new Promise((resolve, reject) => {
    const onMsg = (m) => {
      if (m?.type === type) {
        cleanup();
        resolve(m);
      } else if (m?.type === 'failed') {
        cleanup();
        reject(new Error(m.error));
      }
    };
    const onExit = (code) => (cleanup(), reject(new Error(`${child.spawnfile} exited with ${code} before '${type}'`)));
    const cleanup = () => (child.off('message', onMsg), child.off('exit', onExit));
    child.on('message', onMsg);
    child.on('exit', onExit);
  });
}

export async function oneRound(mode, tool, load, tag, { execArgv = [], onReady } = {}) {
  const dir = mkdtempSync(join(tmpdir(), `itguard-bench-${mode}-`));
  const errFd = openSync(join(dir, 'server.stderr'), 'w');
  const server = fork(here('./server-child.mjs'), [mode, tool, join(dir, 'bench.db')], {
    stdio: ['ignore', 'ignore', errFd, 'ipc'],
    execArgv,
  });
  try {
    const { url, token } = await once(server, 'ready');
    onReady?.(server); // profiling aids attach here (e.g. strace -p server.pid)
    const client = fork(here('./load-child.mjs'), [], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
    const done = once(client, 'done');
    // Server CPU time (user + system) across the measured window: sampled when the load process marks its edges.
    const cpu = {};
    client.on('message', (m) => {
      if (m?.type === 'mark') {
        cpu[m.at] = once(server, 'cpu');
        server.send({ type: 'cpu' });
      }
    });
    client.send({ url, token, tool, tag, ...load });
    const r = await done;
    const [c0, c1] = await Promise.all([cpu.start, cpu.stop]);
    const cpuUs = c1.usage.user + c1.usage.system - (c0.usage.user + c0.usage.system);
    const cpuShare = cpuUs / 1000 / (c1.at - c0.at);
    if (r.errors)
      throw new Error(
        `${mode} ${tool}: ${r.errors} failed calls (first: ${r.firstError}); see ${join(dir, 'server.stderr')}`,
      );
    return {
      rate: r.calls / r.seconds,
      totalCalls: r.totalCalls,
      calls: r.calls,
      p50: percentile(r.latencies, 50),
      p99: percentile(r.latencies, 99),
      cpuUsPerCall: cpuUs / r.calls,
      cpuShare,
    };
  } finally {
    server.send({ type: 'stop' });
    await new Promise((r) => (server.exitCode !== null ? r() : server.once('exit', r)));
    closeSync(errFd);
    rmSync(dir, { recursive: true, force: true });
  }
}

/** Alternates bare and guarded rounds; returns per-side mean calls/s, the per-round rates and latencies. */
export async function compareThroughput(tool, load, rounds, progress) {
  const sides = { bare: [], guarded: [] };
  for (let i = 0; i < rounds; i++) {
    for (const mode of ['bare', 'guarded']) {
      const r = await oneRound(mode, tool, load, `${mode}${i}`);
      sides[mode].push(r);
      progress(
        `  ${tool} ${mode.padEnd(7)} round ${i + 1}/${rounds}: ${r.rate.toFixed(0)} calls/s, server CPU ${r.cpuUsPerCall.toFixed(0)} µs/call at ${(r.cpuShare * 100).toFixed(0)}% of a core (p50 ${r.p50.toFixed(1)} ms, p99 ${r.p99.toFixed(1)} ms)`,
      );
    }
  }
  const summary = (rs) => ({
    rate: mean(rs.map((r) => r.rate)),
    rounds: rs.map((r) => r.rate),
    p50: mean(rs.map((r) => r.p50)),
    p99: mean(rs.map((r) => r.p99)),
    cpuUsPerCall: mean(rs.map((r) => r.cpuUsPerCall)),
    cpuShare: mean(rs.map((r) => r.cpuShare)),
  });
  const bare = summary(sides.bare);
  const guarded = summary(sides.guarded);
  // Each guarded round is compared with the bare round just before it; the median of those ratios is the
  // verdict (one round hit by a disk stall on either side does not decide it). The ratio of means is shown too.
  const pairRatios = guarded.rounds.map((g, i) => g / bare.rounds[i]);
  return {
    bare,
    guarded,
    pairRatios,
    ratio: median(pairRatios),
    ratioOfMeans: guarded.rate / bare.rate,
    cpuRatio: bare.cpuUsPerCall / guarded.cpuUsPerCall,
  };
}
