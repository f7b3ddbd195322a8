/**
 * `npm run bench`: measures itguard against the quality bars of DESIGN §9, each next to a baseline measured in
 * the same run, prints a table and rewrites docs/benchmarks.md. Plain ESM over the compiled code in ../dist.
 * Parts can be run alone (node bench/run.mjs [read] [write] [cold] [kb] [caps]); the doc is rewritten only by a
 * full run, and not at all with --no-write-doc.
 */
import { execFileSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { fileURLToPath } from 'node:url';
import { capsScale } from './lib/caps-scale.mjs';
import { coldStart, nodeOnlyStart } from './lib/cold-start.mjs';
import { kbScale } from './lib/kb-scale.mjs';
import { consoleTable, markdown, summaryRows } from './lib/report.mjs';
import { compareThroughput } from './lib/throughput.mjs';

const LOAD = { sessions: 8, inFlight: 4, warmupMs: 1000, durationMs: 4000 };
const ROUNDS = 4;
const COLD_RUNS = 10;

const args = process.argv.slice(2);
const wanted = args.filter((a) => !a.startsWith('--'));
const writeDoc = wanted.length === 0 && !args.includes('--no-write-doc');
const want = (k) => wanted.length === 0 || wanted.includes(k);
const log = (s) => console.log(s);

function gitCommit() {
  try {
    return execFileSync('git', ['rev-parse', '--short', 'HEAD'], {
      cwd: fileURLToPath(new URL('..', import.meta.url)),
      encoding: 'utf8',
    }).trim();
  } catch {
    return 'unknown';
  }
}

/** The file system the benchmark databases live on (fsync cost depends on it): the longest mount prefix of tmpdir. */
function tmpFs() {
  try {
    const mounts = readFileSync('/proc/mounts', 'utf8')
      .split('\n')
      .map((l) => l.split(' '))
      .filter((f) => f.length > 2 && (os.tmpdir() === f[1] || os.tmpdir().startsWith(f[1] === '/' ? '/' : `${f[1]}/`)))
      .sort((a, b) => b[1].length - a[1].length);
    return mounts[0] ? `${mounts[0][2]} (${mounts[0][0]} on ${mounts[0][1]})` : 'unknown';
  } catch {
    return 'unknown';
  }
}

const load1 = () =>
  os
    .loadavg()
    .map((x) => x.toFixed(2))
    .join(' / ');
const started = new Date();
const machine = {
  Date: started.toISOString(),
  Node: process.version,
  CPU: os.cpus()[0]?.model.trim() ?? 'unknown',
  Cores: String(os.cpus().length),
  RAM: `${(os.totalmem() / 2 ** 30).toFixed(1)} GiB`,
  OS: `${os.type()} ${os.release()} (${os.arch()})`,
  'Databases in': `${os.tmpdir()}, ${tmpFs()}`,
  Commit: `${gitCommit()} (plus any uncommitted changes in the working tree)`,
  'Load average at start (1/5/15 min)': load1(),
};
log(
  `itguard benchmarks — ${machine.Date}, node ${machine.Node}, ${machine.CPU}, ${machine.Cores} cores, ${machine.RAM}, load ${machine['Load average at start (1/5/15 min)']}`,
);
if (os.loadavg()[0] > 0.5) {
  machine.Note = 'the machine was not idle at the start (1-min load average > 0.5): expect noisier numbers';
  log(`note: ${machine.Note}`);
}

const t0 = performance.now();
const r = {};
if (want('read')) {
  log('\n1. guarded read throughput (kb_search)');
  r.read = await compareThroughput('kb_search', LOAD, ROUNDS, log);
}
if (want('write')) {
  log('\n2. guarded write throughput (ticket_create)');
  r.write = await compareThroughput('ticket_create', LOAD, ROUNDS, log);
}
if (want('cold')) {
  log(`\n3. cold start of serve --stdio (${COLD_RUNS} runs each)`);
  r.cold = { ...(await coldStart(COLD_RUNS)), nodeOnly: await nodeOnlyStart(COLD_RUNS) };
}
if (want('kb')) {
  log('\n4. kb_search at 10,000 articles');
  r.kb = await kbScale();
}
if (want('caps')) {
  log('\n5. cap check vs audit rows');
  r.caps = await capsScale({ progress: log });
}
const elapsedS = (performance.now() - t0) / 1000;
machine['Load average at end (1/5/15 min)'] = load1();

const rows = summaryRows(r);
const misses = rows.filter((x) => !x.ok);
log(
  `\n${consoleTable(rows)}\n\n${misses.length ? `${misses.length} target(s) missed.` : 'All targets met.'} (${elapsedS.toFixed(0)} s)`,
);

if (writeDoc) {
  const file = fileURLToPath(new URL('../docs/benchmarks.md', import.meta.url));
  let doc = markdown({ machine, r, rows, load: LOAD, coldRuns: COLD_RUNS, misses, elapsedS });
  // The Fuzzing section comes from `npm run fuzz` (test/fuzz), not from this run: it is carried over as it is.
  try {
    const fuzzing = /^## Fuzzing\n[\s\S]*?(?=^## |(?![\s\S]))/m.exec(readFileSync(file, 'utf8'))?.[0];
    if (fuzzing) doc = `${doc.trimEnd()}\n\n${fuzzing.trimEnd()}\n`;
  } catch {
    // no earlier file: nothing to carry over
  }
  try {
    // Formatted like the rest of the repository when prettier (a dev dependency) is installed.
    const prettier = await import('prettier');
    doc = await prettier.format(doc, { ...(await prettier.resolveConfig(file)), filepath: file });
  } catch {
    // not installed: the unformatted Markdown is just as valid
  }
  writeFileSync(file, doc);
  log(`wrote ${file}`);
}
