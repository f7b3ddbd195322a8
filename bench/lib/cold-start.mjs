/**
 * Benchmark 3: cold start of `itguard serve --stdio` to a ready `initialize` response, against a bare SDK v2 stdio
 * server (bare-stdio.mjs) in the same run. Each run spawns `node dist/cli.js serve --stdio --db FILE` (built-in
 * demo policy, default logging to stderr) or `node bench/lib/bare-stdio.mjs`, writes one
 * initialize request to stdin at once (it is buffered by the pipe until the server reads it), and stops the
 * clock at the first stdout line carrying the response. The process is then ended by closing stdin and
 * waited for, so runs never overlap. "new db": a new file each run (migrations + demo seeding included);
 * "existing db": the same already-seeded file every run. The three kinds of run are interleaved.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const CLI = fileURLToPath(new URL('../../dist/cli.js', import.meta.url));
const BARE = fileURLToPath(new URL('./bare-stdio.mjs', import.meta.url));
const INIT = `${JSON.stringify({
  jsonrpc: '2.0',
  id: 1,
  method: 'initialize',
  params: { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: 'itguard-bench', version: '1' } },
})}\n`;

/** Spawns `node ...argv`, sends initialize, resolves with the ms to its response line. */
function oneStart(argv, cwd) {
  return new Promise((resolve, reject) => {
    const env = { ...process.env };
    delete env.ITGUARD_POLICY; // the built-in demo policy, as a first-time user gets it
    const t0 = performance.now();
    const child = spawn(process.execPath, argv, {
      cwd,
      env,
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    let out = '';
    let err = '';
    let ms;
    child.stdout.setEncoding('utf8');
    child.stdout.on('data', (chunk) => {
      if (ms !== undefined) return;
      out += chunk;
      const line = out.split('\n').find((l) => l.includes('"id":1'));
      if (!line) return;
      ms = performance.now() - t0;
      const msg = JSON.parse(line);
      if (!msg.result?.serverInfo) return reject(new Error(`initialize failed: ${line}`));
      child.stdin.end();
    });
    child.stderr.on('data', (c) => (err += c));
    child.on('error', reject);
    child.on('exit', (code) =>
      ms === undefined
        ? reject(new Error(`${argv.join(' ')} exited ${code} before answering: ${err.slice(-500)}`))
        : resolve(ms),
    );
    child.stdin.write(INIT);
  });
}

const itguard = (db) => [CLI, 'serve', '--stdio', '--db', db];
const bare = [BARE];

/**
 * Returns { newDb: ms[], existingDb: ms[], bare: ms[] } over `runs` runs each: itguard on a new database, itguard
 * on an existing one and the bare SDK stdio server, interleaved, after one untimed warm-up run of each.
 */
export async function coldStart(runs) {
  const dir = mkdtempSync(join(tmpdir(), 'itguard-bench-cold-'));
  try {
    const existing = join(dir, 'existing.db');
    await oneStart(itguard(existing), dir); // seeds it; also warms the OS file cache for node and dist/
    await oneStart(bare, dir); // warms the cache for the SDK's files
    const out = { newDb: [], existingDb: [], bare: [] };
    for (let i = 0; i < runs; i++) {
      // The order rotates per run, so neither side always follows the same one.
      const steps = [
        () => oneStart(itguard(join(dir, `new-${i}.db`)), dir).then((ms) => out.newDb.push(ms)),
        () => oneStart(itguard(existing), dir).then((ms) => out.existingDb.push(ms)),
        () => oneStart(bare, dir).then((ms) => out.bare.push(ms)),
      ];
      for (let k = 0; k < steps.length; k++) await steps[(i + k) % steps.length]();
    }
    return out;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** The floor under any Node CLI on this machine: `node -e 0`, spawn to exit. */
export async function nodeOnlyStart(runs) {
  const out = [];
  for (let i = 0; i < runs; i++) {
    const t0 = performance.now();
    await new Promise((resolve, reject) => {
      const child = spawn(process.execPath, ['-e', '0'], { stdio: 'ignore' });
      child.on('error', reject);
      child.on('exit', resolve);
    });
    out.push(performance.now() - t0);
  }
  return out;
}
