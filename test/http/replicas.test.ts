/**
 * Replicas in process (DESIGN §6): every 2025-11-25 session id begins with this replica's id, a session id naming
 * another replica answers 404 saying where it lives and to initialize again, an unknown id of this replica keeps
 * the plain 404, 2026-07-28 requests need no session at all; /healthz names the replica and fails (503) when the
 * store cannot be read. The same over nginx and several `serve --http` processes: test/e2e/replicas-http.test.ts.
 */
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import type { SqliteApp as App } from '../../src/app.js';
import { maskUrls, startHttp, type RunningHttp } from '../../src/http/app.js';
import { replicaOfSession } from '../../src/http/sessions.js';
import { tempDir, testApp } from '../helpers/harness.js';

let app: App | undefined;
let http: RunningHttp | undefined;
let tmp: ReturnType<typeof tempDir> | undefined;
afterEach(async () => {
  await http?.close();
  app?.close();
  tmp?.cleanup();
  http = app = tmp = undefined;
});

async function start(replicaId: string, dbPath = ':memory:') {
  app = testApp({ dbPath });
  http = await startHttp(app, { host: '127.0.0.1', port: 0, replicaId });
  const token = app.sqlite.tokens.create('kb-reader', 'test').token;
  return { url: `${http.url}/mcp`, token };
}

const headers = (token: string, sid?: string) => ({
  'content-type': 'application/json',
  accept: 'application/json, text/event-stream',
  authorization: `Bearer ${token}`,
  ...(sid ? { 'mcp-session-id': sid, 'mcp-protocol-version': '2025-11-25' } : {}),
});
async function initialize(url: string, token: string) {
  const res = await fetch(url, {
    method: 'POST',
    headers: headers(token),
    body: JSON.stringify({
      jsonrpc: '2.0',
      id: 1,
      method: 'initialize',
      params: { protocolVersion: '2025-11-25', capabilities: {}, clientInfo: { name: 'replicas', version: '1' } },
    }),
  });
  await res.text();
  expect(res.status).toBe(200);
  return res.headers.get('mcp-session-id')!;
}
async function listTools(url: string, token: string, sid: string) {
  const res = await fetch(url, {
    method: 'POST',
    headers: headers(token, sid),
    body: JSON.stringify({ jsonrpc: '2.0', id: 2, method: 'tools/list', params: {} }),
  });
  const text = await res.text();
  // A served request answers on an SSE stream; a refusal is plain JSON.
  const body = (res.headers.get('content-type')?.startsWith('application/json') ? JSON.parse(text) : {}) as {
    error?: { message: string };
  };
  return { status: res.status, body };
}

describe('session ids name their replica', () => {
  it('replicaOfSession reads the prefix before the first "." when it is a replica id', () => {
    expect(replicaOfSession('r2.0b7e5a8c-1d2e-4f00-9a1b-2c3d4e5f6a7b')).toBe('r2');
    expect(replicaOfSession('web-01.x.y')).toBe('web-01');
    expect(replicaOfSession('0b7e5a8c-1d2e-4f00-9a1b-2c3d4e5f6a7b')).toBeUndefined();
    expect(replicaOfSession('.abc')).toBeUndefined();
    expect(replicaOfSession('R2.abc')).toBeUndefined();
  });

  it('a new session id is `<replica>.` + random, and it serves its own sessions', async () => {
    const { url, token } = await start('r1');
    const a = await initialize(url, token);
    const b = await initialize(url, token);
    expect(a).toMatch(/^r1\.[0-9a-f-]{36}$/);
    expect(b).not.toBe(a);
    expect(replicaOfSession(a)).toBe('r1');
    expect((await listTools(url, token, a)).status).toBe(200);
  });

  it('another replica’s session id answers 404 naming that replica and asking for initialize', async () => {
    const { url, token } = await start('r1');
    const r = await listTools(url, token, 'r2.0b7e5a8c-1d2e-4f00-9a1b-2c3d4e5f6a7b');
    expect(r.status).toBe(404);
    expect(r.body.error!.message).toMatch(/lives on replica r2, and this is replica r1/);
    expect(r.body.error!.message).toMatch(/Send initialize without Mcp-Session-Id/);
  });

  it('an unknown id of this replica, or of no replica, keeps the plain 404', async () => {
    const { url, token } = await start('r1');
    for (const sid of ['r1.0b7e5a8c-1d2e-4f00-9a1b-2c3d4e5f6a7b', '0b7e5a8c-1d2e-4f00-9a1b-2c3d4e5f6a7b']) {
      const r = await listTools(url, token, sid);
      expect(r.status, sid).toBe(404);
      expect(r.body.error!.message, sid).toMatch(
        /^Session not found: it expired, was closed, or this server restarted/,
      );
    }
  });

  it('a request without a token is refused (401) before any session routing', async () => {
    const { url } = await start('r1');
    const res = await fetch(url, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'mcp-session-id': 'r2.x' },
      body: JSON.stringify({ jsonrpc: '2.0', id: 2, method: 'tools/list', params: {} }),
    });
    expect(res.status).toBe(401);
  });
});

describe('console sessions name their replica too', () => {
  it('the sign-in cookie is `<replica>.` + random, and it is accepted back', async () => {
    await start('r4');
    const approver = app!.sqlite.tokens.create('it-approver', 'test').token;
    const login = await fetch(`${http!.url}/console/login`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ token: approver }),
      redirect: 'manual',
    });
    expect(login.status).toBe(303);
    const cookie = /itguard_console=([^;]+)/.exec(login.headers.get('set-cookie') ?? '')![1]!;
    expect(cookie).toMatch(/^r4\.[A-Za-z0-9_-]{43}$/);
    const page = await fetch(`${http!.url}/console`, { headers: { cookie: `itguard_console=${cookie}` } });
    expect(await page.text()).toContain('data-testid="principal">it-approver<');
  });
});

describe('/healthz', () => {
  it('names the replica and the store, and fails (503) when the SQLite file is gone', async () => {
    tmp = tempDir();
    const db = join(tmp.dir, 'itguard.db');
    await start('r7', db);
    const ok = await fetch(`${http!.url}/healthz`);
    expect(ok.status).toBe(200);
    expect(await ok.json()).toEqual({
      status: 'ok',
      replica: 'r7',
      store: { kind: 'sqlite', ok: true },
      kill_switch: 'off',
      sessions: 0,
    });
    rmSync(db);
    const gone = await fetch(`${http!.url}/healthz`);
    expect(gone.status).toBe(503);
    expect(await gone.json()).toEqual({
      status: 'unavailable',
      replica: 'r7',
      store: { kind: 'sqlite', ok: false, detail: 'the database file is gone' },
    });
  });

  it('fails (503) when the database cannot be read', async () => {
    await start('r7');
    app!.sqlite.db.close();
    const res = await fetch(`${http!.url}/healthz`);
    expect(res.status).toBe(503);
    const body = (await res.json()) as { store: { kind: string; ok: boolean; detail: string } };
    expect(body.store).toMatchObject({ kind: 'sqlite', ok: false });
    expect(body.store.detail).toMatch(/not open/i);
    // afterEach closes the app again; better-sqlite3's close is idempotent.
  });

  it('masks a URL password in a store’s detail', () => {
    expect(maskUrls('connect ECONNREFUSED postgres://itguard:s3cret@db:5432/itguard')).toBe(
      'connect ECONNREFUSED postgres://itguard:***@db:5432/itguard',
    );
    expect(maskUrls('postgres://db:5432/x and http://a@b')).toBe('postgres://db:5432/x and http://a@b');
  });
});
