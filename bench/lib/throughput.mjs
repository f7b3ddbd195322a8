/**
 * Benchmarks 1 and 2: guarded vs bare vs proxy-peer throughput of one tool over Streamable HTTP. Each round
 * starts a fresh database, the server-side process(es) and a load process; bare, guarded and peer alternate
 * (bare, guarded, peer, bare, guarded, peer, …) so drift on the machine hits all alike. Calls/s per side is the
 * mean over its rounds; each ratio is the median of the per-round ratios.
 */
import { fork } from 'node:child_process';
import { mkdtempSync, openSync, rmSync, closeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { mean, median, percentile } from './stats.mjs';

const here = (f) => fileURLToPath(new URL(f, import.meta.url));

export function once(child, type) {
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

/** Forks a server-side process (stderr to `errFd`; `env` adds to this process's environment) and waits for its 'ready' message. */
export function start(script, args, errFd, execArgv, env) {
  const child = fork(here(script), args, {
    stdio: ['ignore', 'ignore', errFd, 'ipc'],
    execArgv,
    ...(env ? { env: { ...process.env, ...env } } : {}),
  });
  return { child, ready: once(child, 'ready') };
}

export async function stop(child) {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((r) => child.once('exit', r));
  try {
    child.send({ type: 'stop' });
  } catch {
    child.kill();
  }
  await exited;
}

/**
 * CPU time (user + system, µs) of the processes at one instant, summed, and when it was sampled; with the sum of
 * their unit committers' commits and the wall time (ms) spent in them (itguard processes only).
 */
export async function cpuOf(children) {
  const samples = await Promise.all(children.map((c) => (c.send({ type: 'cpu' }), once(c, 'cpu'))));
  return {
    us: samples.reduce((n, m) => n + m.usage.user + m.usage.system, 0),
    at: samples[0].at,
    commits: samples.reduce((n, m) => n + (m.commits?.n ?? 0), 0),
    commitMs: samples.reduce((n, m) => n + (m.commits?.ms ?? 0), 0),
  };
}

/**
 * One round: a new database, the server side (guarded: itguard; bare: the bare server; peer: the bare server plus
 * the guard proxy in front of it, two processes) and a load process talking to the front process. Server CPU is
 * the sum over the server-side processes.
 */
export async function oneRound(mode, tool, load, tag, { execArgv = [], onReady } = {}) {
  const dir = mkdtempSync(join(tmpdir(), `itguard-bench-${mode}-`));
  const errFd = openSync(join(dir, 'server.stderr'), 'w');
  const children = [];
  try {
    const server = start(
      './server-child.mjs',
      [mode === 'peer' ? 'bare' : mode, tool, join(dir, 'bench.db')],
      errFd,
      execArgv,
    );
    children.push(server.child);
    let { url, token } = await server.ready;
    if (mode === 'peer') {
      const proxy = start('./proxy-child.mjs', [url], errFd, execArgv);
      children.unshift(proxy.child);
      ({ url } = await proxy.ready);
    }
    onReady?.(children[0]); // profiling aids attach here (e.g. strace -p pid): the process the load talks to
    const client = fork(here('./load-child.mjs'), [], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
    const done = once(client, 'done');
    // Server CPU time (user + system) across the measured window: sampled when the load process marks its edges.
    const cpu = {};
    client.on('message', (m) => {
      if (m?.type === 'mark') cpu[m.at] = cpuOf(children);
    });
    client.send({ url, token, tool, tag, ...load });
    const r = await done;
    const [c0, c1] = await Promise.all([cpu.start, cpu.stop]);
    const cpuUs = c1.us - c0.us;
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
    // Front first (the proxy), then the server behind it.
    for (const c of children) await stop(c);
    closeSync(errFd);
    rmSync(dir, { recursive: true, force: true });
  }
}

export const MODES = ['bare', 'guarded', 'peer'];

/**
 * Alternates bare, guarded and peer rounds; returns per-side mean calls/s, the per-round rates and latencies, and
 * the ratios itguard/bare and itguard/peer.
 */
export async function compareThroughput(tool, load, rounds, progress) {
  const sides = Object.fromEntries(MODES.map((m) => [m, []]));
  for (let i = 0; i < rounds; i++) {
    for (const mode of MODES) {
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
  const peer = summary(sides.peer);
  // Each guarded round is compared with the bare and the peer round of the same round; the median of those
  // ratios is the verdict (one round hit by a disk stall on either side does not decide it). The ratio of means
  // is shown too.
  const vs = (other) => {
    const pairRatios = guarded.rounds.map((g, i) => g / other.rounds[i]);
    return {
      pairRatios,
      ratio: median(pairRatios),
      ratioOfMeans: guarded.rate / other.rate,
      cpuRatio: other.cpuUsPerCall / guarded.cpuUsPerCall,
    };
  };
  return { bare, guarded, peer, ...vs(bare), vsPeer: vs(peer) };
}
