/**
 * A real PostgreSQL server for the benchmark's PostgreSQL part (bench/lib/pg-*.mjs), ported from the tests' helper
 * (test/helpers/pg.ts, which is TypeScript and not compiled to dist/) with one difference that matters: it runs as
 * production would, durably — fsync, synchronous_commit and full_page_writes on, autovacuum on — so every commit
 * waits for its WAL flush. It runs on this machine, on the same cores as the itguard processes and the load.
 *
 * A fresh data directory per start (a copy of a cluster made once by initdb into a template under the temp
 * directory), `postgres` on a free loopback port with its unix socket in the same directory. Run as root (the
 * machines here), initdb and postgres run as the `postgres` system user (else `nobody`; ITGUARD_PG_USER overrides):
 * PostgreSQL refuses root. The binaries: ITGUARD_PG_BIN, else the newest /usr/lib/postgresql/N/bin, else
 * `pg_config --bindir`; version 15 or newer.
 */
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { chownSync, existsSync, mkdtempSync, readFileSync, readdirSync, renameSync, rmSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import postgres from 'postgres';

const MIN_VERSION = 15;
const hasServer = (d) => existsSync(path.join(d, 'initdb')) && existsSync(path.join(d, 'postgres'));

export function findPgBin() {
  if (process.env.ITGUARD_PG_BIN) {
    if (hasServer(process.env.ITGUARD_PG_BIN)) return process.env.ITGUARD_PG_BIN;
    throw new Error(`ITGUARD_PG_BIN=${process.env.ITGUARD_PG_BIN} holds no initdb and postgres`);
  }
  const root = '/usr/lib/postgresql';
  if (existsSync(root))
    for (const v of readdirSync(root)
      .filter((v) => /^\d+$/.test(v))
      .sort((a, b) => Number(b) - Number(a)))
      if (hasServer(path.join(root, v, 'bin'))) return path.join(root, v, 'bin');
  const cfg = spawnSync('pg_config', ['--bindir'], { encoding: 'utf8' });
  if (cfg.status === 0 && hasServer(cfg.stdout.trim())) return cfg.stdout.trim();
  throw new Error(
    'PostgreSQL server binaries (initdb, postgres) not found: apt-get install -y postgresql, or set ITGUARD_PG_BIN',
  );
}

/** This process's user, or when that is root an unprivileged system user. */
function runAs() {
  if (process.getuid?.() !== 0) return { user: os.userInfo().username };
  const candidates = process.env.ITGUARD_PG_USER ? [process.env.ITGUARD_PG_USER] : ['postgres', 'nobody'];
  for (const user of candidates) {
    const uid = spawnSync('id', ['-u', user], { encoding: 'utf8' });
    const gid = spawnSync('id', ['-g', user], { encoding: 'utf8' });
    if (uid.status === 0 && gid.status === 0 && Number(uid.stdout) !== 0)
      return { user, uid: Number(uid.stdout), gid: Number(gid.stdout) };
  }
  throw new Error(`running as root and none of ${candidates.join(', ')} exists to run PostgreSQL as`);
}

function freePort() {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

/** A fresh cluster in `data`: a copy of a template made once per version and user (initdb takes ~2 s). */
function initData(binDir, version, who, data, opts) {
  const template = path.join(os.tmpdir(), `itguard-bench-pg-template-${version}-${who.uid ?? os.userInfo().uid}`);
  if (!existsSync(path.join(template, 'PG_VERSION'))) {
    const aside = mkdtempSync(`${template}.tmp-`);
    if (who.uid !== undefined) chownSync(aside, who.uid, who.gid);
    const init = spawnSync(
      path.join(binDir, 'initdb'),
      [
        '-D',
        path.join(aside, 'data'),
        '-A',
        'trust',
        '-U',
        'postgres',
        '-E',
        'UTF8',
        '--locale=C',
        '--no-instructions',
      ],
      { ...opts, encoding: 'utf8' },
    );
    if (init.status !== 0) {
      rmSync(aside, { recursive: true, force: true });
      throw new Error(`initdb (${binDir}, as ${who.user}) failed: ${init.error?.message ?? ''}${init.stderr ?? ''}`);
    }
    try {
      renameSync(path.join(aside, 'data'), template);
    } catch {
      // another run made it first
    }
    rmSync(aside, { recursive: true, force: true });
  }
  const cp = spawnSync('cp', ['-a', template, data], { ...opts, encoding: 'utf8' });
  if (cp.status !== 0) throw new Error(`copying ${template} failed: ${cp.error?.message ?? ''}${cp.stderr}`);
}

/** Production-like durability: every commit waits for its WAL flush. Sized for 3 replicas' pools and the bench's. */
const SETTINGS = {
  listen_addresses: '127.0.0.1',
  fsync: 'on',
  synchronous_commit: 'on',
  full_page_writes: 'on',
  max_connections: '100',
  shared_buffers: '128MB',
  log_min_messages: 'warning',
  log_line_prefix: '%m [%p] ',
};

/**
 * Starts the server. Returns { url(db), createDatabase(name), pid, dir, version, binDir, startMs, settings, stop(),
 * log() }; `pid` is the postmaster's (its backends are its children: pgCpuUs reads them).
 */
export async function startBenchPg() {
  const t0 = performance.now();
  const binDir = findPgBin();
  const version = Number(
    /(\d+)/.exec(execFileSync(path.join(binDir, 'postgres'), ['--version'], { encoding: 'utf8' }))?.[1],
  );
  if (!(version >= MIN_VERSION)) throw new Error(`PostgreSQL ${version} in ${binDir}; the bench needs ${MIN_VERSION}+`);
  const who = runAs();
  const dir = mkdtempSync(path.join(os.tmpdir(), 'itguard-bench-pg-'));
  if (who.uid !== undefined) chownSync(dir, who.uid, who.gid);
  const opts = { cwd: dir, uid: who.uid, gid: who.gid, env: { ...process.env, LC_ALL: 'C', TZ: 'UTC' } };
  const cleanup = () => rmSync(dir, { recursive: true, force: true });
  try {
    initData(binDir, version, who, path.join(dir, 'data'), opts);
  } catch (e) {
    cleanup();
    throw e;
  }
  let child;
  let stderr = '';
  let port = 0;
  for (let attempt = 1; !child; attempt++) {
    port = await freePort();
    const args = ['-D', path.join(dir, 'data'), '-p', String(port), '-k', dir];
    for (const [k, v] of Object.entries(SETTINGS)) args.push('-c', `${k}=${v}`);
    stderr = '';
    const c = spawn(path.join(binDir, 'postgres'), args, { ...opts, stdio: ['ignore', 'ignore', 'pipe'] });
    c.stderr.setEncoding('utf8');
    const ready = await new Promise((resolve) => {
      const timer = setTimeout(() => resolve(false), 30_000);
      const done = (ok) => (clearTimeout(timer), resolve(ok));
      c.stderr.on('data', (s) => {
        stderr += s;
        if (stderr.includes('ready to accept connections')) done(true);
      });
      c.once('exit', () => done(false));
      c.once('error', (e) => ((stderr += String(e)), done(false)));
    });
    if (ready) child = c;
    else {
      c.kill('SIGKILL');
      if (!/could not bind|Address already in use/i.test(stderr) || attempt >= 3) {
        cleanup();
        throw new Error(`postgres did not start on 127.0.0.1:${port}:\n${stderr.slice(-4000)}`);
      }
    }
  }
  let stopped = false;
  const onExit = () => stopped || (child.kill('SIGKILL'), cleanup());
  process.once('exit', onExit);
  const url = (db) => `postgres://postgres@127.0.0.1:${port}/${db}`;
  const admin = () => postgres(url('postgres'), { max: 1, onnotice: () => {} });
  return {
    url,
    pid: child.pid,
    dir,
    version,
    binDir,
    settings: SETTINGS,
    startMs: Math.round(performance.now() - t0),
    log: () => stderr,
    /** Creates an empty database and returns its URL. */
    async createDatabase(name) {
      if (!/^[a-z_][a-z0-9_]*$/.test(name)) throw new Error(`database name ${name} is not a plain identifier`);
      const sql = admin();
      try {
        await sql.unsafe(`CREATE DATABASE ${name}`);
      } finally {
        await sql.end({ timeout: 5 });
      }
      return url(name);
    },
    async dropDatabase(name) {
      const sql = admin();
      try {
        await sql.unsafe(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
      } finally {
        await sql.end({ timeout: 5 });
      }
    },
    async stop() {
      if (stopped) return;
      stopped = true;
      process.removeListener('exit', onExit);
      if (child.exitCode === null && child.signalCode === null) {
        const exited = new Promise((r) => child.once('exit', r));
        child.kill('SIGINT'); // fast shutdown
        const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
        await exited;
        clearTimeout(timer);
      }
      cleanup();
    },
  };
}

let ticksPerS;
/** Clock ticks per second of /proc's CPU times. */
function clkTck() {
  if (ticksPerS) return ticksPerS;
  try {
    ticksPerS = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
  } catch {
    ticksPerS = 100;
  }
  return ticksPerS;
}

/** Fields of /proc/<pid>/stat after the command (which may hold spaces): [state, ppid, …]. */
function statFields(pid) {
  try {
    const s = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return s.slice(s.lastIndexOf(')') + 2).split(' ');
  } catch {
    return undefined; // gone
  }
}

/**
 * CPU time (µs) PostgreSQL has used so far: the postmaster's own and its reaped children's (backends that exited),
 * plus every live child's (backends, the checkpointer, the WAL writer, autovacuum, …), from /proc/<pid>/stat.
 */
export function pgCpuUs(pid) {
  const f = statFields(pid);
  if (!f) return NaN;
  // After ')': state(0) ppid(1) … utime(11) stime(12) cutime(13) cstime(14).
  let ticks = Number(f[11]) + Number(f[12]) + Number(f[13]) + Number(f[14]);
  for (const d of readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    const c = statFields(d);
    if (c && Number(c[1]) === pid) ticks += Number(c[11]) + Number(c[12]);
  }
  return (ticks / clkTck()) * 1e6;
}
