/**
 * A real PostgreSQL server for the PostgreSQL store tests (issue 20), started from a fresh temporary directory on a
 * free loopback port: a copy of a cluster made once by `initdb -A trust --no-sync` (see initData), then `postgres`
 * with fsync, synchronous_commit and full_page_writes off (test data only: a crash loses it, which no test cares about), its unix socket in the same
 * directory, and one database created for the caller. `stop()` shuts it down and removes the directory.
 *
 * PostgreSQL refuses to run as root. Run as root (CI, the machines here), initdb and postgres run as the `postgres`
 * system user the Debian package creates (else `nobody`; `ITGUARD_PG_USER` overrides), through spawn's uid/gid
 * (libuv drops root's supplementary groups too), with the directory chowned to that user. Run as anyone else,
 * they run as that user.
 *
 * The binaries: `ITGUARD_PG_BIN` if set, else the newest /usr/lib/postgresql/N/bin (Debian's layout), else `pg_config
 * --bindir`, else PATH. PostgreSQL 15 or newer. Missing, they fail the suite with a message saying how to install
 * them (.ci/run does); nothing here skips.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { chownSync, existsSync, mkdtempSync, readdirSync, renameSync, rmSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import postgres from 'postgres';

export interface Pg {
  /** postgres://… of the database created for the caller (trust auth, superuser `postgres`). */
  url: string;
  /** The database name in `url`. */
  database: string;
  port: number;
  dir: string;
  /** The server's major version and the bin directory it came from. */
  version: number;
  binDir: string;
  /** Milliseconds from startPg()'s call to the database being ready (initdb, start, CREATE DATABASE). */
  startMs: number;
  /** Creates one more empty database on the same server and returns its URL (a fresh schema per test). */
  createDatabase(name: string): Promise<string>;
  /** Shuts the server down (fast shutdown, SIGKILL after 5 s) and removes its directory. Safe to call twice. */
  stop(): Promise<void>;
  /** What the server wrote to stderr so far (its log). */
  log(): string;
}

const INSTALL_HINT =
  'install it (Debian/Ubuntu: DEBIAN_FRONTEND=noninteractive apt-get install -y postgresql; .ci/run does this), ' +
  'or point ITGUARD_PG_BIN at the directory holding initdb and postgres';

const MIN_VERSION = 15;

function hasServer(dir: string): boolean {
  return existsSync(path.join(dir, 'initdb')) && existsSync(path.join(dir, 'postgres'));
}

/** The bin directory of PostgreSQL's server programs (initdb, postgres), newest first. */
export function findPgBin(): string {
  const tried: string[] = [];
  const env = process.env.ITGUARD_PG_BIN;
  if (env) {
    if (hasServer(env)) return env;
    throw new Error(`ITGUARD_PG_BIN=${env} holds no initdb and postgres: ${INSTALL_HINT}.`);
  }
  const root = '/usr/lib/postgresql';
  if (existsSync(root)) {
    const versions = readdirSync(root)
      .filter((v) => /^\d+$/.test(v))
      .sort((a, b) => Number(b) - Number(a));
    for (const v of versions) {
      const d = path.join(root, v, 'bin');
      tried.push(d);
      if (hasServer(d)) return d;
    }
  } else tried.push(`${root}/*/bin`);
  const cfg = spawnSync('pg_config', ['--bindir'], { encoding: 'utf8' });
  if (cfg.status === 0 && hasServer(cfg.stdout.trim())) return cfg.stdout.trim();
  tried.push('pg_config --bindir');
  for (const d of (process.env.PATH ?? '').split(path.delimiter)) if (d && hasServer(d)) return d;
  tried.push('PATH');
  throw new Error(
    `PostgreSQL server binaries (initdb, postgres) were not found in ${tried.join(', ')}: ${INSTALL_HINT}.`,
  );
}

function serverVersion(binDir: string): number {
  const r = spawnSync(path.join(binDir, 'postgres'), ['--version'], { encoding: 'utf8' });
  const m = /(\d+)(?:\.\d+)?/.exec(r.stdout ?? '');
  if (r.status !== 0 || !m) throw new Error(`${binDir}/postgres --version failed: ${r.stderr || r.error?.message}`);
  return Number(m[1]);
}

interface RunAs {
  uid?: number;
  gid?: number;
  user: string;
}

/** Who runs the server: this process's user, or when that is root an unprivileged system user. */
function runAs(): RunAs {
  if (typeof process.getuid !== 'function' || process.getuid() !== 0) return { user: os.userInfo().username };
  const candidates = process.env.ITGUARD_PG_USER ? [process.env.ITGUARD_PG_USER] : ['postgres', 'nobody'];
  for (const user of candidates) {
    const uid = spawnSync('id', ['-u', user], { encoding: 'utf8' });
    const gid = spawnSync('id', ['-g', user], { encoding: 'utf8' });
    if (uid.status === 0 && gid.status === 0) {
      const u = Number(uid.stdout.trim());
      if (u !== 0) return { uid: u, gid: Number(gid.stdout.trim()), user };
    }
  }
  throw new Error(
    `running as root, and none of the users ${candidates.join(', ')} exists to run PostgreSQL as (it refuses root); ` +
      'create one (useradd --system postgres) or set ITGUARD_PG_USER',
  );
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address() as net.AddressInfo;
      s.close(() => resolve(port));
    });
  });
}

type SpawnAs = { cwd: string; uid?: number; gid?: number; env: NodeJS.ProcessEnv };

/**
 * Puts a fresh cluster in `data`. initdb takes about 2 s here, most of a start: it runs once per server version and
 * user into a template directory under the temp directory (made aside, then renamed into place, so concurrent test
 * files never see half of one), and each start copies the template (`cp -a`, as the server's user: ~0.2 s).
 * Returns an error message, or undefined.
 */
function initData(binDir: string, version: number, who: RunAs, data: string, opts: SpawnAs): string | undefined {
  const template = path.join(os.tmpdir(), `itguard-pg-template-v1-${version}-${who.uid ?? os.userInfo().uid}`);
  if (!existsSync(path.join(template, 'PG_VERSION'))) {
    const aside = mkdtempSync(`${template}.tmp-`);
    if (who.uid !== undefined) chownSync(aside, who.uid, who.gid!);
    const init = spawnSync(
      path.join(binDir, 'initdb'),
      [
        '-D',
        path.join(aside, 'data'),
        '-A',
        'trust',
        '-U',
        'postgres',
        '--no-sync',
        '-E',
        'UTF8',
        '--locale=C',
        '--no-instructions',
      ],
      { ...opts, encoding: 'utf8' },
    );
    if (init.status !== 0) {
      rmSync(aside, { recursive: true, force: true });
      return `initdb (${binDir}, as ${who.user}) failed: ${init.error?.message ?? ''}${init.stderr ?? ''}${init.stdout ?? ''}`.trim();
    }
    try {
      renameSync(path.join(aside, 'data'), template);
    } catch {
      // Another test file made it first: theirs is as good.
    }
    rmSync(aside, { recursive: true, force: true });
  }
  const cp = spawnSync('cp', ['-a', template, data], { ...opts, encoding: 'utf8' });
  if (cp.status !== 0)
    return `copying the PostgreSQL template ${template} failed: ${cp.error?.message ?? ''}${cp.stderr}`;
  return undefined;
}

const SERVER_SETTINGS: Record<string, string> = {
  listen_addresses: '127.0.0.1',
  fsync: 'off',
  synchronous_commit: 'off',
  full_page_writes: 'off',
  max_connections: '200',
  shared_buffers: '64MB',
  // The tests take advisory and row locks from several clients: a deadlock is reported quickly.
  deadlock_timeout: '200ms',
  log_min_messages: 'warning',
  log_line_prefix: '%m [%p] ',
  // No stats file, no autovacuum surprises between a test's statements.
  autovacuum: 'off',
};

/** Starts a PostgreSQL server and creates database `database` (default `itguard_test`) on it. */
export async function startPg(opts: { database?: string } = {}): Promise<Pg> {
  const t0 = performance.now();
  const binDir = findPgBin();
  const version = serverVersion(binDir);
  if (version < MIN_VERSION)
    throw new Error(
      `PostgreSQL ${version} found in ${binDir}; itguard needs ${MIN_VERSION} or newer: ${INSTALL_HINT}.`,
    );
  const who = runAs();
  const dir = mkdtempSync(path.join(os.tmpdir(), 'itguard-pg-'));
  if (who.uid !== undefined) chownSync(dir, who.uid, who.gid!);
  const data = path.join(dir, 'data');
  const spawnOpts: SpawnAs = { cwd: dir, uid: who.uid, gid: who.gid, env: { ...process.env, LC_ALL: 'C', TZ: 'UTC' } };
  const cleanup = () => rmSync(dir, { recursive: true, force: true });

  const init = initData(binDir, version, who, data, spawnOpts);
  if (init) {
    cleanup();
    throw new Error(init);
  }

  let child: ChildProcess | undefined;
  let stderr = '';
  let port = 0;
  // The free port can be taken between asking and binding: a few tries.
  for (let attempt = 1; ; attempt++) {
    port = await freePort();
    const args = ['-D', data, '-p', String(port), '-k', dir];
    for (const [k, v] of Object.entries(SERVER_SETTINGS)) args.push('-c', `${k}=${v}`);
    stderr = '';
    const c = spawn(path.join(binDir, 'postgres'), args, { ...spawnOpts, stdio: ['ignore', 'ignore', 'pipe'] });
    c.stderr!.setEncoding('utf8');
    const ready = await new Promise<boolean>((resolve) => {
      const timer = setTimeout(() => resolve(false), 30_000);
      c.stderr!.on('data', (s: string) => {
        stderr += s;
        if (stderr.includes('ready to accept connections')) {
          clearTimeout(timer);
          resolve(true);
        }
      });
      c.once('exit', () => {
        clearTimeout(timer);
        resolve(false);
      });
      c.once('error', (e) => {
        stderr += String(e);
        clearTimeout(timer);
        resolve(false);
      });
    });
    if (ready) {
      child = c;
      break;
    }
    c.kill('SIGKILL');
    const portTaken = /could not bind|Address already in use/i.test(stderr);
    if (!portTaken || attempt >= 3) {
      cleanup();
      throw new Error(
        `postgres (${binDir}, as ${who.user}) did not start on 127.0.0.1:${port}:\n${stderr.slice(-4000)}`,
      );
    }
  }

  let stopped = false;
  const server = child;
  const onExit = () => {
    if (!stopped) {
      server.kill('SIGKILL');
      cleanup();
    }
  };
  process.once('exit', onExit);

  const urlOf = (db: string) => `postgres://postgres@127.0.0.1:${port}/${db}`;
  const createDatabase = async (name: string): Promise<string> => {
    if (!/^[a-z_][a-z0-9_]*$/.test(name)) throw new Error(`database name ${name} is not a plain identifier`);
    const admin = postgres(urlOf('postgres'), { max: 1, onnotice: () => {} });
    try {
      // FILE_COPY: ~40 ms with fsync off, against ~600 ms for the default WAL_LOG strategy (which logs every block).
      await admin.unsafe(`CREATE DATABASE ${name} STRATEGY = FILE_COPY`);
    } finally {
      await admin.end({ timeout: 5 });
    }
    return urlOf(name);
  };

  const stop = async (): Promise<void> => {
    if (stopped) return;
    stopped = true;
    process.removeListener('exit', onExit);
    if (server.exitCode === null && server.signalCode === null) {
      const exited = new Promise<void>((resolve) => server.once('exit', () => resolve()));
      server.kill('SIGINT'); // fast shutdown: disconnects clients, no checkpoint wait worth mentioning with fsync off
      const timer = setTimeout(() => server.kill('SIGKILL'), 5000);
      await exited;
      clearTimeout(timer);
    }
    cleanup();
  };

  const database = opts.database ?? 'itguard_test';
  try {
    await createDatabase(database);
  } catch (e) {
    await stop();
    throw e;
  }
  return {
    url: urlOf(database),
    database,
    port,
    dir,
    version,
    binDir,
    startMs: Math.round(performance.now() - t0),
    createDatabase,
    stop,
    log: () => stderr,
  };
}
