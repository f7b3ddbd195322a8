/**
 * Profiling aid (not part of `npm run bench`): runs throughput rounds with the server under `node --cpu-prof` and
 * prints where its time went.
 *   npm run build && node bench/profile.mjs [kb_search|ticket_create] [guarded|bare|diff] [seconds]
 * guarded / bare: the functions with the most self and inclusive time in that server.
 * diff: one bare and one guarded round; per call, the self time of each function in both and the difference,
 *       largest extra cost of the guarded server first (what the guards add to a call).
 * V8 samples the main thread even while it is blocked in a synchronous call (an fsync inside better-sqlite3),
 * so blocking time shows up under the JS function that made the call. Start-up (module compile) is included.
 */
import { mkdtempSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { summarise } from './lib/cpuprofile.mjs';
import { oneRound } from './lib/throughput.mjs';

const [tool = 'kb_search', mode = 'guarded', seconds = '5'] = process.argv.slice(2);
const TOP = Number(process.env.TOP ?? 30);

async function profiled(side) {
  const dir = mkdtempSync(join(tmpdir(), 'itguard-prof-'));
  const load = { sessions: 8, inFlight: 4, warmupMs: 1000, durationMs: Number(seconds) * 1000 };
  const r = await oneRound(side, tool, load, `prof-${side}`, { execArgv: ['--cpu-prof', `--cpu-prof-dir=${dir}`] });
  console.log(
    `${side} ${tool}: ${r.rate.toFixed(0)} calls/s, server CPU ${r.cpuUsPerCall.toFixed(0)} µs/call (${(r.cpuShare * 100).toFixed(0)}% of a core)`,
  );
  const file = join(
    dir,
    readdirSync(dir).find((f) => f.endsWith('.cpuprofile')),
  );
  return { r, s: summarise(file, TOP), file };
}

const show = (title, totalMs, rows) => {
  console.log(`\n${title} (of ${(totalMs / 1000).toFixed(1)} s sampled)`);
  for (const x of rows) console.log(`${x.pct.toFixed(1).padStart(6)}%  ${x.ms.toFixed(0).padStart(7)} ms  ${x.fn}`);
};

if (mode === 'diff') {
  const bare = await profiled('bare');
  const guarded = await profiled('guarded');
  const perCall = (p, k) => ((p.s.selfMap.get(k) ?? 0) * 1000) / p.r.totalCalls;
  const keys = new Set([...bare.s.selfMap.keys(), ...guarded.s.selfMap.keys()]);
  const rows = [...keys]
    .map((k) => ({ k, b: perCall(bare, k), g: perCall(guarded, k) }))
    .sort((x, y) => y.g - y.b - (x.g - x.b))
    .slice(0, TOP);
  const total = (p) => (p.s.totalMs * 1000) / p.r.totalCalls;
  console.log(`\nsampled time per call: bare ${total(bare).toFixed(0)} µs, guarded ${total(guarded).toFixed(0)} µs`);
  console.log('\nself time per call, µs: bare / guarded / extra — largest extra first');
  for (const x of rows)
    console.log(
      `${x.b.toFixed(0).padStart(6)} ${x.g.toFixed(0).padStart(6)} ${(x.g - x.b).toFixed(0).padStart(6)}  ${x.k}`,
    );
  const own = [...guarded.s.inclusiveMap]
    .filter(([k]) => k.includes(' dist/'))
    .sort((a, b) => b[1] - a[1])
    .slice(0, TOP);
  console.log('\nguarded: inclusive time per call in itguard code (dist/), µs');
  for (const [k, ms] of own) console.log(`${((ms * 1000) / guarded.r.totalCalls).toFixed(0).padStart(6)}  ${k}`);
  console.log(`\nprofiles: ${bare.file}\n          ${guarded.file}`);
} else {
  const { s, file } = await profiled(mode);
  show('self time', s.totalMs, s.self);
  show('inclusive time', s.totalMs, s.inclusive);
  show('inclusive time, itguard code only (dist/)', s.totalMs, s.ownInclusive);
  console.log(`\nprofile: ${file}`);
}
