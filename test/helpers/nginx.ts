/**
 * A real nginx (Debian's /usr/sbin/nginx) in front of test replicas, configured from deploy/nginx/itguard.conf: the
 * shipped file with its replica block (BEGIN … END replicas) rewritten by `replicaBlock` for the test's replicas,
 * `listen` on a free loopback port and the access log in a temporary directory; wrapped in a main configuration
 * that keeps everything else there too (pid, temp paths, error log, `-e` for the log nginx opens before it reads
 * any configuration). It runs in the foreground (`daemon off`) as a child process that `stop()` kills.
 *
 * nginx needs no root: run as root (CI), it runs as an unprivileged user (www-data, else nobody; spawn's uid/gid),
 * with the directory handed to that user, as test/helpers/pg.ts does for PostgreSQL. Missing nginx, `nginxMissing()`
 * says why and how to install it (.ci/run does), and the tests that need it skip with that message.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { chownSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const NGINX = process.env.ITGUARD_NGINX_BIN ?? '/usr/sbin/nginx';
export const DEPLOY_CONF = fileURLToPath(new URL('../../deploy/nginx/itguard.conf', import.meta.url));

/** Why nginx cannot be used here (undefined: it can). */
export function nginxMissing(): string | undefined {
  if (existsSync(NGINX)) return undefined;
  return `nginx is not installed (${NGINX} not found): the reverse-proxy tests skip. Install it with DEBIAN_FRONTEND=noninteractive apt-get install -y nginx (.ci/run does), or set ITGUARD_NGINX_BIN.`;
}

export interface Replica {
  /** Its ITGUARD_REPLICA_ID. */
  id: string;
  /** host:port */
  address: string;
}

/**
 * The replica block of deploy/nginx/itguard.conf for these replicas: `itguard_all` round-robin over all, one
 * upstream per replica (it, then the others as backups), and the map from replica id to upstream. The shipped file's
 * block is this function's output for its example replicas (test/http/nginx-conf.test.ts checks that).
 */
export function replicaBlock(replicas: readonly Replica[]): string {
  const out: string[] = ['upstream itguard_all {'];
  for (const r of replicas) out.push(`    server ${r.address} max_fails=2 fail_timeout=10s;`);
  out.push('    keepalive 32;', '}');
  for (const r of replicas) {
    out.push(`upstream itguard_${r.id} {`, `    server ${r.address} max_fails=2 fail_timeout=10s;`);
    for (const o of replicas) if (o !== r) out.push(`    server ${o.address} backup;`);
    out.push('    keepalive 8;', '}');
  }
  out.push('map $itguard_replica $itguard_upstream {', '    default itguard_all;');
  for (const r of replicas) out.push(`    ${r.id} itguard_${r.id};`);
  out.push('}');
  return out.join('\n');
}

const BLOCK = /(# BEGIN replicas[^\n]*\n(?:#[^\n]*\n)*)([\s\S]*?)\n(# END replicas)/;

/** The replica block of a configuration text (the lines between the BEGIN comment and END replicas). */
export function replicaBlockOf(conf: string): string {
  const m = BLOCK.exec(conf);
  if (!m) throw new Error('no "# BEGIN replicas" … "# END replicas" block in the nginx configuration');
  return m[2]!;
}

/** deploy/nginx/itguard.conf for these replicas, listening on `listen`, logging requests to `accessLog`. */
export function siteConf(replicas: readonly Replica[], listen: string, accessLog: string): string {
  const conf = readFileSync(DEPLOY_CONF, 'utf8');
  replicaBlockOf(conf); // throws if the block is gone
  const out = conf
    .replace(BLOCK, (_m, begin: string, _old: string, end: string) => `${begin}${replicaBlock(replicas)}\n${end}`)
    .replace(/^(\s*)listen 80;/m, `$1listen ${listen};`)
    .replace(/^(\s*)access_log \S+ itguard;/m, `$1access_log ${accessLog} itguard;`);
  if (!out.includes(`listen ${listen};`) || !out.includes(`access_log ${accessLog} itguard;`))
    throw new Error('deploy/nginx/itguard.conf no longer has the `listen 80;` and `access_log … itguard;` lines');
  return out;
}

/** The main configuration around a site file: everything nginx writes goes under `dir`. */
function mainConf(dir: string, site: string): string {
  const p = (name: string) => path.join(dir, name);
  return [
    'daemon off;',
    'worker_processes 1;',
    `pid ${p('nginx.pid')};`,
    `error_log ${p('error.log')} info;`,
    'events { worker_connections 512; }',
    'http {',
    `    client_body_temp_path ${p('client_body')};`,
    `    proxy_temp_path ${p('proxy')};`,
    `    fastcgi_temp_path ${p('fastcgi')};`,
    `    uwsgi_temp_path ${p('uwsgi')};`,
    `    scgi_temp_path ${p('scgi')};`,
    `    access_log ${p('access.log')};`,
    `    include ${site};`,
    '}',
    '',
  ].join('\n');
}

interface RunAs {
  uid?: number;
  gid?: number;
  user: string;
}

/** This process's user, or when that is root an unprivileged one (nginx's own www-data, else nobody). */
function runAs(): RunAs {
  if (typeof process.getuid !== 'function' || process.getuid() !== 0) return { user: os.userInfo().username };
  for (const user of ['www-data', 'nobody']) {
    const uid = spawnSync('id', ['-u', user], { encoding: 'utf8' });
    const gid = spawnSync('id', ['-g', user], { encoding: 'utf8' });
    if (uid.status === 0 && gid.status === 0 && Number(uid.stdout) !== 0)
      return { uid: Number(uid.stdout.trim()), gid: Number(gid.stdout.trim()), user };
  }
  throw new Error('running as root, and neither www-data nor nobody exists to run nginx as');
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

const canConnect = (port: number) =>
  new Promise<boolean>((resolve) => {
    const s = net.connect(port, '127.0.0.1');
    s.once('connect', () => (s.destroy(), resolve(true)));
    s.once('error', () => resolve(false));
  });

export interface Nginx {
  /** http://127.0.0.1:PORT */
  url: string;
  port: number;
  dir: string;
  /** The site configuration it runs (deploy/nginx/itguard.conf with the test's replicas). */
  conf: string;
  /** The access log's lines so far (log_format itguard: replica="…" upstream=ADDR). */
  accessLog(): string[];
  errorLog(): string;
  /** Kills nginx (SIGQUIT, SIGKILL after 3 s) and removes its directory. Safe to call twice. */
  stop(): Promise<void>;
}

/**
 * `nginx -t` of a site file in the same wrapper as startNginx: the configuration's errors, or undefined. nginx -t
 * binds the `listen` address and opens the logs, so `listen 80` becomes a free loopback port and the access log a
 * file in the temporary directory (an unprivileged nginx can do neither with the shipped ones); the rest is as given.
 */
export async function checkConf(site: string): Promise<string | undefined> {
  const who = runAs();
  const dir = mkdtempSync(path.join(os.tmpdir(), 'itguard-nginx-t-'));
  try {
    const file = path.join(dir, 'itguard.conf');
    const port = await freePort();
    writeFileSync(
      file,
      site
        .replace(/^(\s*)listen 80;/m, `$1listen 127.0.0.1:${port};`)
        .replace(/^(\s*)access_log \S+ itguard;/m, `$1access_log ${path.join(dir, 'a.log')} itguard;`),
    );
    writeFileSync(path.join(dir, 'nginx.conf'), mainConf(dir, file));
    if (who.uid !== undefined) chownSync(dir, who.uid, who.gid!);
    const r = spawnSync(
      NGINX,
      ['-t', '-p', dir, '-e', path.join(dir, 'error.log'), '-c', path.join(dir, 'nginx.conf')],
      {
        encoding: 'utf8',
        uid: who.uid,
        gid: who.gid,
      },
    );
    return r.status === 0 ? undefined : `${r.stderr}${r.stdout}${r.error?.message ?? ''}`;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** Starts nginx on a free loopback port in front of these replicas. */
export async function startNginx(replicas: readonly Replica[]): Promise<Nginx> {
  const missing = nginxMissing();
  if (missing) throw new Error(missing);
  const who = runAs();
  const dir = mkdtempSync(path.join(os.tmpdir(), 'itguard-nginx-'));
  const cleanup = () => rmSync(dir, { recursive: true, force: true });
  const accessPath = path.join(dir, 'itguard.access.log');
  const errorPath = path.join(dir, 'error.log');
  let child: ChildProcess | undefined;
  let port = 0;
  let site = '';
  let stderr = '';
  // The free port can be taken between asking and binding: a few tries.
  for (let attempt = 1; ; attempt++) {
    port = await freePort();
    site = siteConf(replicas, `127.0.0.1:${port}`, accessPath);
    writeFileSync(path.join(dir, 'itguard.conf'), site);
    writeFileSync(path.join(dir, 'nginx.conf'), mainConf(dir, path.join(dir, 'itguard.conf')));
    if (who.uid !== undefined) chownSync(dir, who.uid, who.gid!);
    stderr = '';
    const c = spawn(NGINX, ['-p', dir, '-e', errorPath, '-c', path.join(dir, 'nginx.conf')], {
      cwd: dir,
      uid: who.uid,
      gid: who.gid,
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    c.stderr!.setEncoding('utf8');
    c.stderr!.on('data', (s: string) => (stderr += s));
    let exited = false;
    c.once('exit', () => (exited = true));
    c.once('error', (e) => ((stderr += String(e)), (exited = true)));
    const deadline = Date.now() + 10_000;
    while (!exited && Date.now() < deadline && !(await canConnect(port))) await new Promise((r) => setTimeout(r, 50));
    if (!exited && (await canConnect(port))) {
      child = c;
      break;
    }
    c.kill('SIGKILL');
    const log = `${stderr}${existsSync(errorPath) ? readFileSync(errorPath, 'utf8') : ''}`;
    if (!/Address already in use/i.test(log) || attempt >= 3) {
      cleanup();
      throw new Error(`nginx (${NGINX}, as ${who.user}) did not start on 127.0.0.1:${port}:\n${log.slice(-4000)}`);
    }
  }

  const server = child;
  let stopped = false;
  const onExit = () => {
    if (!stopped) server.kill('SIGKILL');
  };
  process.once('exit', onExit);
  const read = (f: string) => (existsSync(f) ? readFileSync(f, 'utf8') : '');
  return {
    url: `http://127.0.0.1:${port}`,
    port,
    dir,
    conf: site,
    accessLog: () => read(accessPath).split('\n').filter(Boolean),
    errorLog: () => `${stderr}${read(errorPath)}`,
    async stop() {
      if (stopped) return;
      stopped = true;
      process.off('exit', onExit);
      if (server.exitCode === null && server.signalCode === null) {
        const exited = new Promise<void>((resolve) => server.once('exit', () => resolve()));
        server.kill('SIGQUIT');
        const timer = setTimeout(() => server.kill('SIGKILL'), 3000);
        await exited;
        clearTimeout(timer);
      }
      cleanup();
    },
  };
}
