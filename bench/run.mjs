/**
 * `npm run bench`: measures itguard against the quality bars of DESIGN §9, each next to a baseline measured in
 * the same run, prints a table and rewrites docs/benchmarks.md. Plain ESM over the compiled code in ../dist.
 * Parts can be run alone (node bench/run.mjs [read] [write] [scale] [cold] [kb] [caps] [recall] [tasks] [pg]); the doc is rewritten only by a
 * full run, and not at all with --no-write-doc; BENCH_QUICK=1 is a short smoke run of every piece (see QUICK).
 */
import { execFileSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { capsScale } from './lib/caps-scale.mjs';
import { taskScale } from './lib/task-scale.mjs';
import { coldStart, nodeOnlyStart } from './lib/cold-start.mjs';
import { kbRecall } from './lib/kb-recall.mjs';
import { kbScale } from './lib/kb-scale.mjs';
import { consoleTable, markdown, summaryRows } from './lib/report.mjs';
import { scaleLimit, scaleOut } from './lib/scale-out.mjs';
import { compareThroughput } from './lib/throughput.mjs';
import { startBenchPg } from './lib/pg.mjs';
import { pgModel } from './lib/pg-model.mjs';
import { pgReplicas } from './lib/pg-replicas.mjs';
import { pgRoundTrips } from './lib/pg-roundtrips.mjs';
import { pgScale } from './lib/pg-scale.mjs';

// BENCH_QUICK=1: a smoke run (short rounds, one round per side, few cold starts, fewer searches, smaller audit
// tables) that proves every piece works; its numbers are not the benchmark's. Its Markdown goes to a temporary
// file, never to docs/benchmarks.md.
const QUICK = process.env.BENCH_QUICK === '1';
const LOAD = QUICK
  ? { sessions: 8, inFlight: 4, warmupMs: 300, durationMs: 1000 }
  : { sessions: 8, inFlight: 4, warmupMs: 1000, durationMs: 4000 };
const ROUNDS = QUICK ? 1 : 4;
const SCALE_ROUNDS = QUICK ? 1 : 3;
const COLD_RUNS = QUICK ? 3 : 10;
const KB = QUICK
  ? { small: { searches: 200, warmup: 20 }, large: { articles: 20_000, searches: 50, warmup: 10 } }
  : { small: { searches: 2_000, warmup: 200 }, large: { articles: 100_000, searches: 500, warmup: 50 } };
const CAPS = QUICK ? { sizes: [0, 10_000], rounds: 1, strictIterations: 20, fastIterations: 100 } : {};
const TASKS = QUICK ? { sizes: [0, 10_000], rounds: 1, iterations: 200 } : {};
// The PostgreSQL part: replica rounds (the same load shape), round trips at idle, the checks vs table size.
const PG = QUICK
  ? {
      rounds: 1,
      roundTrips: { samples: 12, warmup: 4 },
      scale: { sizes: [0, 10_000], rounds: 1, durableIterations: 10, fastIterations: 30 },
    }
  : { rounds: 2, roundTrips: { samples: 100, warmup: 20 }, scale: {} };

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

const kbLine = (k) =>
  `${k.count} articles: generated in ${(k.genMs / 1000).toFixed(1)} s, loaded in ${(k.loadMs / 1000).toFixed(1)} s, ` +
  `${k.samples.length} searches in ${(k.queryMs / 1000).toFixed(1)} s`;
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
if (want('scale')) {
  log('\n2b. scale-out: 1, 2 (3 on more than two cores) itguard processes on one SQLite file');
  r.scale = {
    write: await scaleOut('ticket_create', LOAD, SCALE_ROUNDS, log),
    read: await scaleOut('kb_search', LOAD, SCALE_ROUNDS, log),
  };
  for (const s of [r.scale.write, r.scale.read]) {
    const two = s.rows.find((x) => x.n === 2);
    log(
      `   ${s.tool === 'ticket_create' ? 'write' : 'read'} throughput with 2 processes = ${two.ratio.toFixed(2)}× of 1; limit: ${scaleLimit(s).text}`,
    );
  }
}
if (want('cold')) {
  log(`\n3. cold start of serve --stdio vs a bare SDK stdio server (${COLD_RUNS} runs each)`);
  r.cold = { ...(await coldStart(COLD_RUNS)), nodeOnly: await nodeOnlyStart(COLD_RUNS) };
}
if (want('kb')) {
  log('\n4. kb_search at 10,000 articles');
  r.kb = await kbScale(KB.small);
  log(`   ${kbLine(r.kb)}`);
  log(`   and at ${KB.large.articles.toLocaleString('en-US')} articles (reported, no verdict)`);
  r.kbLarge = await kbScale({ ...KB.large, demo: false });
  log(`   ${kbLine(r.kbLarge)}`);
}
if (want('recall')) {
  log('\n6. kb_search recall on employee questions');
  r.recall = await kbRecall();
  log(
    `   recall@1 ${r.recall.tuned.at1.toFixed(3)}, recall@3 ${r.recall.tuned.at3.toFixed(3)} (held-out: ${r.recall.heldOut.at1.toFixed(3)}, ${r.recall.heldOut.at3.toFixed(3)})`,
  );
}
if (want('caps')) {
  log('\n5. cap check vs audit rows');
  r.caps = await capsScale({ ...CAPS, progress: log });
}
if (want('tasks')) {
  log('\n6. task admission (admit + settle) vs open tasks');
  r.tasks = await taskScale({ ...TASKS, progress: log });
}
if (want('pg')) {
  log('\n8. PostgreSQL: round trips at idle, 1/2/3 replicas vs the bare server, the model; 9. checks vs table size');
  const pg = await startBenchPg();
  try {
    r.pgInfo = { version: pg.version, startMs: pg.startMs, settings: pg.settings };
    log(
      `   PostgreSQL ${pg.version} started in ${pg.startMs} ms (fsync on, synchronous_commit on), on the same ${os.cpus().length} cores`,
    );
    r.pgRt = await pgRoundTrips(pg, PG.roundTrips);
    for (const [k, c] of Object.entries(r.pgRt.kinds))
      log(
        `   ${k}: ${c.stmts} statements per call (${c.outside} outside units), ${c.unitsPerCall} units ` +
          `(${Object.entries(c.units)
            .map(([u, x]) => `${u} ${x.stmts} stmts ${x.ms.toFixed(2)} ms`)
            .join(', ')}), audit head held ${c.headMsPerCall.toFixed(2)} ms, call ${c.ms.toFixed(2)} ms`,
      );
    log(
      `   SELECT 1 ${r.pgRt.base.selectMs.toFixed(3)} ms; commit ${r.pgRt.base.durableCommitMs.toFixed(2)} ms durable, ` +
        `${r.pgRt.base.lazyCommitMs.toFixed(2)} ms without the flush (WAL flush ${r.pgRt.base.flushMs.toFixed(2)} ms)`,
    );
    r.pg = await pgReplicas(pg, { load: LOAD, rounds: PG.rounds, progress: log });
    r.pgModel = pgModel(r.pg, r.pgRt);
    for (const k of ['write', 'read']) {
      const m = r.pgModel[k];
      if (!m) continue;
      const c = m.rows.map(
        (x) =>
          `${x.k} core${x.k > 1 ? 's' : ''}: ${x.limit.toFixed(0)} calls/s (${x.by}), ${x.replicas.toFixed(1)} replicas`,
      );
      log(`   model, ${m.tool}: ${c.join('; ')}`);
    }
    r.pgScale = await pgScale(pg, { ...PG.scale, progress: log });
  } finally {
    await pg.stop();
  }
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
  // A quick run writes its Markdown to a temporary file instead, to check the report without touching the doc.
  const outFile = QUICK ? join(os.tmpdir(), 'itguard-bench-quick.md') : file;
  let doc = markdown({
    machine,
    r,
    rows,
    load: LOAD,
    coldRuns: COLD_RUNS,
    kb: KB,
    misses,
    elapsedS,
    scaleRounds: SCALE_ROUNDS,
    pgRounds: PG.rounds,
  });
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
  writeFileSync(outFile, doc);
  log(`wrote ${outFile}`);
}
