/**
 * The smoke run (issue 22 point 6): the built itguard on the Node that runs this script (`process.execPath`), end to
 * end through real MCP clients: serve over stdio (tools/list, a read, a write), serve over Streamable HTTP (a token,
 * an install that waits for an approver, `approvals approve`, the install run once and reported by
 * request_status), the kill switch (`kill` refuses the next call, `resume` lets it through; the same over the admin
 * API) and `audit verify`.
 * `.ci/run` runs it on this machine's Node and on Node 22 and 24 (scripts/node-smoke.sh); `node scripts/smoke.mjs`
 * runs it on the current one.
 * Prints one line per step and exits 0, or 1 with the step that failed and the last lines the server (or the
 * SQLite driver check) wrote to stderr, so that a crash of the process (an abort, a segmentation fault, a module
 * built for another Node ABI) is reported with its own words.
 */
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StdioClientTransport } from '@modelcontextprotocol/sdk/client/stdio.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const CLI = join(ROOT, 'dist/cli.js');
const { DEMO_POLICY_YAML } = await import(join(ROOT, 'dist/policy/demo.js'));
const dir = mkdtempSync(join(tmpdir(), 'itguard-smoke-'));
const db = join(dir, 'smoke.db');
const policy = join(dir, 'policy.yaml');
writeFileSync(policy, DEMO_POLICY_YAML.replace(/wait_seconds: \d+/, 'wait_seconds: 1'));
const env = { ...process.env, ITGUARD_STATE_KEY: 'cd'.repeat(32), ITGUARD_LOG_LEVEL: 'warn' };
const started = Date.now();
let step = 'start';
/** The stderr of the process of the current step (a server, the SQLite driver check), its tail printed on failure. */
let lastServerLog = () => '';
/** How a child process ended, for the failure message: an exit code, or the signal that killed it. */
const ended = (code, signal) => (signal ? `killed by ${signal}` : `exit code ${code}`);

const check = (ok, what) => {
  if (!ok) throw new Error(what);
};
const cli = (...args) => {
  const r = spawnSync(process.execPath, [CLI, ...args, '--db', db, '--policy', policy], {
    encoding: 'utf8',
    env,
    timeout: 30_000,
  });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
};
const say = (s) => process.stdout.write(`smoke [node ${process.version}] ${s}\n`);
const errorCode = (r) => r._meta?.['itguard/error']?.code;

/**
 * The SQLite driver the server picks on this Node (src/store/sqlite/db.ts: better-sqlite3 below Node 24, Node's
 * built-in node:sqlite from 24, ITGUARD_SQLITE_DRIVER overriding): opened through the built code's own `connect` in
 * a child process of this Node and used (open, write, read, free statements, a full GC), so that an addon built for
 * another ABI, or a driver that crashes this Node, is named before the server runs.
 */
function sqliteDriver() {
  step = 'SQLite driver';
  const probe = `
    const { connect, sqliteDriver } = await import(${JSON.stringify(join(ROOT, 'dist/store/sqlite/db.js'))});
    const db = connect(':memory:');
    db.exec('CREATE TABLE t (x)');
    for (let i = 0; i < 2000; i++) db.prepare('INSERT INTO t VALUES (?)').run(i);
    globalThis.gc();
    const n = db.prepare('SELECT count(*) AS n FROM t').get().n;
    const version = db.prepare('SELECT sqlite_version()').pluck().get();
    db.close();
    if (n !== 2000) throw new Error('read back ' + n + ' rows');
    process.stdout.write(sqliteDriver() + ' ' + version);`;
  const r = spawnSync(process.execPath, ['--expose-gc', '--input-type=module', '-e', probe], {
    cwd: ROOT,
    encoding: 'utf8',
    timeout: 30_000,
  });
  const [driver = '?', version = '?'] = (r.stdout ?? '').trim().split(' ');
  const what =
    driver === 'better-sqlite3'
      ? `better-sqlite3 ${createRequire(join(ROOT, 'package.json'))('better-sqlite3/package.json').version} (Node ABI ${process.versions.modules})`
      : `${driver === 'node' ? 'node:sqlite' : driver}`;
  lastServerLog = () => r.stderr ?? '';
  check(r.status === 0, `the SQLite driver ${what} does not run on this Node (${ended(r.status, r.signal)})`);
  lastServerLog = () => '';
  say(`SQLite driver: ${what}, SQLite ${version}: loads and runs`);
}

async function stdio() {
  step = 'stdio';
  const client = new Client({ name: 'smoke-stdio', version: '1' });
  const transport = new StdioClientTransport({
    command: process.execPath,
    args: [CLI, 'serve', '--stdio', '--db', db, '--policy', policy],
    env,
    stderr: 'pipe',
  });
  let err = '';
  transport.stderr?.on('data', (d) => (err += d.toString()));
  lastServerLog = () => err;
  await client.connect(transport);
  const { tools } = await client.listTools();
  check(
    tools.some((t) => t.name === 'ticket_create'),
    'tools/list over stdio has no ticket_create',
  );
  const kb = await client.callTool({ name: 'kb_search', arguments: { query: 'vpn' } });
  check(!kb.isError, `kb_search failed: ${JSON.stringify(kb.content)}`);
  const t = await client.callTool({
    name: 'ticket_create',
    arguments: { summary: 'Smoke test ticket', requester: 'jdoe', reason: 'smoke run of the CI' },
  });
  check(!t.isError, `ticket_create failed: ${JSON.stringify(t.content)}`);
  await client.close();
  lastServerLog = () => '';
  say(`stdio: ${tools.length} tools, a read and a write`);
}

function serveHttp() {
  const proc = spawn(process.execPath, [CLI, 'serve', '--http', '--port', '0', '--db', db, '--policy', policy], {
    env: { ...env, ITGUARD_LOG_LEVEL: 'info' },
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let err = '';
  return new Promise((resolve, reject) => {
    const t = setTimeout(() => reject(new Error(`serve --http did not start:\n${err}`)), 20_000);
    proc.stderr.on('data', (d) => {
      err += d.toString();
      const m = /"url":"(http:\/\/[^"]+\/mcp)"/.exec(err);
      if (m && /create a token|=====/.test(err)) {
        clearTimeout(t);
        resolve({ proc, url: m[1], stderr: () => err });
      }
    });
    proc.once('exit', (c, sig) => reject(new Error(`serve --http ended (${ended(c, sig)}):\n${err}`)));
  });
}

async function http() {
  step = 'http';
  const token = cli('token', 'create', '--principal', 'helpdesk-agent').stdout.trim();
  check(token.startsWith('itg_'), 'token create printed no token');
  const served = await serveHttp();
  lastServerLog = served.stderr;
  const client = new Client({ name: 'smoke-http', version: '1' });
  try {
    await client.connect(
      new StreamableHTTPClientTransport(new URL(served.url), {
        requestInit: { headers: { Authorization: `Bearer ${token}` } },
      }),
    );
    say(`http: connected to ${served.url}`);

    step = 'approval';
    const r = await client.callTool({
      name: 'software_install',
      arguments: { user: 'jdoe', package: 'adobe-acrobat-pro', reason: 'smoke run: needs to sign contracts' },
    });
    check(errorCode(r) === 'APPROVAL_PENDING', `software_install did not wait for an approver: ${JSON.stringify(r)}`);
    const id = r._meta['itguard/error'].request_id;
    const a = cli('approvals', 'approve', id, '--json');
    check(a.code === 0 && JSON.parse(a.stdout).ok === true, `approvals approve failed: ${a.stderr}`);
    let status = '';
    for (let i = 0; i < 60 && status !== 'succeeded'; i++) {
      await new Promise((res) => setTimeout(res, 250));
      const s = await client.callTool({ name: 'request_status', arguments: { request_id: id } });
      status = s.structuredContent?.status ?? '';
    }
    check(status === 'succeeded', `the approved install did not run (status ${status})`);
    say(`approval: ${id} approved from the CLI and executed`);

    step = 'kill switch';
    check(cli('kill', '--reason', 'smoke run').code === 0, 'kill failed');
    const refused = await client.callTool({ name: 'kb_search', arguments: { query: 'printer' } });
    check(
      errorCode(refused) === 'KILL_SWITCH_ENGAGED',
      `a call ran with the switch engaged: ${JSON.stringify(refused)}`,
    );
    check(cli('resume', '--reason', 'smoke run over').code === 0, 'resume failed');
    const again = await client.callTool({ name: 'kb_search', arguments: { query: 'printer' } });
    check(!again.isError, `a call was refused after resume: ${JSON.stringify(again.content)}`);
    say('kill switch: engaged refuses, resume lets calls through');

    step = 'admin API';
    const approver = cli('token', 'create', '--principal', 'it-approver').stdout.trim();
    const admin = (method, path, body) =>
      fetch(new URL(`/admin/v1${path}`, served.url), {
        method,
        headers: { authorization: `Bearer ${approver}`, 'content-type': 'application/json' },
        ...(body ? { body: JSON.stringify(body) } : {}),
      }).then(async (r) => ({ status: r.status, json: await r.json() }));
    const doc = await admin('GET', '/openapi.json');
    check(doc.json.openapi === '3.1.0', 'no OpenAPI document at /admin/v1/openapi.json');
    const on = await admin('POST', '/kill-switch/engage', { reason: 'smoke run over the admin API' });
    check(on.status === 200 && on.json.engaged === true, `admin API engage failed: ${JSON.stringify(on)}`);
    const stopped = await client.callTool({ name: 'kb_search', arguments: { query: 'wifi' } });
    check(errorCode(stopped) === 'KILL_SWITCH_ENGAGED', 'a call ran with the switch engaged over the admin API');
    const off = await admin('POST', '/kill-switch/release', { reason: 'smoke run over' });
    check(off.status === 200 && off.json.engaged === false, `admin API release failed: ${JSON.stringify(off)}`);
    say('admin API: the kill switch engaged and released from its OpenAPI paths');
  } finally {
    await client.close().catch(() => undefined);
    served.proc.kill('SIGTERM');
    await new Promise((res) => (served.proc.exitCode === null ? served.proc.once('exit', res) : res()));
  }
}

try {
  sqliteDriver();
  await stdio();
  await http();
  step = 'audit verify';
  const v = cli('audit', 'verify', '--json');
  check(v.code === 0 && JSON.parse(v.stdout).ok === true, `audit verify failed: ${v.stdout}${v.stderr}`);
  say(`audit verify: ${JSON.parse(v.stdout).count} records, chain OK`);
  say(`passed in ${((Date.now() - started) / 1000).toFixed(1)} s`);
} catch (e) {
  process.stdout.write(`smoke [node ${process.version}] FAILED at ${step}: ${e?.message ?? e}\n`);
  const log = lastServerLog().split('\n').slice(-40).join('\n');
  if (log.trim()) process.stdout.write(`the process's last stderr lines:\n${log}\n`);
  process.exitCode = 1;
} finally {
  rmSync(dir, { recursive: true, force: true });
}
