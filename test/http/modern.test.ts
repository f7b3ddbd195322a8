/**
 * /mcp for 2026-07-28 requests (startHttp in process, raw HTTP): the same Host/Origin checks, bearer tokens and body
 * limit as 2025 sessions; no session is created; the principal is the token's on every request; tools/list depends on
 * that principal only and is marked private to it.
 */
import { readFileSync } from 'node:fs';
import { request } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { SqliteApp as App } from '../../src/app.js';
import { startHttp, type RunningHttp } from '../../src/http/app.js';
import { testApp } from '../helpers/harness.js';

let app: App;
let http: RunningHttp;
let agent: string;
let reader: string;
beforeAll(async () => {
  app = testApp();
  http = await startHttp(app, { host: '127.0.0.1', port: 0 });
  agent = app.sqlite.tokens.create('helpdesk-agent', 'test').token;
  reader = app.sqlite.tokens.create('kb-reader', 'test').token;
});
afterAll(async () => {
  await http.close();
  app.close();
});

const ENVELOPE = {
  'io.modelcontextprotocol/protocolVersion': '2026-07-28',
  'io.modelcontextprotocol/clientInfo': { name: 'raw', version: '1' },
  'io.modelcontextprotocol/clientCapabilities': {},
};
let nextId = 1;
/** A 2026-07-28 request: the envelope in `_meta`, and the standard headers the HTTP binding requires (SEP-2243). */
const rpc = (method: string, params: Record<string, unknown> = {}) => ({
  body: JSON.stringify({ jsonrpc: '2.0', id: nextId++, method, params: { ...params, _meta: ENVELOPE } }),
  headers: {
    'mcp-protocol-version': '2026-07-28',
    'mcp-method': method,
    ...(typeof params.name === 'string' ? { 'mcp-name': params.name } : {}),
  },
});
const headersFor = (r: ReturnType<typeof rpc>, token: string | null, extra: Record<string, string>) => ({
  'content-type': 'application/json',
  accept: 'application/json, text/event-stream',
  ...r.headers,
  ...(token ? { authorization: `Bearer ${token}` } : {}),
  ...extra,
});
const post = (r: ReturnType<typeof rpc>, extra: Record<string, string> = {}, token: string | null = agent) =>
  fetch(`${http.url}/mcp`, { method: 'POST', headers: headersFor(r, token, extra), body: r.body });
/** fetch() will not send a Host header of our choosing; node:http will. */
const postWithHost = (r: ReturnType<typeof rpc>, host: string) =>
  new Promise<number>((resolve, reject) => {
    const req = request(
      { host: '127.0.0.1', port: http.port, path: '/mcp', method: 'POST', headers: headersFor(r, agent, { host }) },
      (res) => {
        res.resume();
        resolve(res.statusCode ?? 0);
      },
    );
    req.on('error', reject);
    req.end(r.body);
  });
/** The JSON-RPC answer, whether the response is JSON or an SSE stream. */
async function answer(res: Response): Promise<{ result?: Record<string, unknown>; error?: { code: number } }> {
  const text = await res.text();
  if (!(res.headers.get('content-type') ?? '').includes('text/event-stream')) return JSON.parse(text);
  const data = text
    .split('\n')
    .filter((l) => l.startsWith('data: '))
    .map((l) => JSON.parse(l.slice(6)) as { id?: unknown; result?: Record<string, unknown> });
  return data.find((d) => d.id !== undefined)!;
}

describe('/mcp, 2026-07-28 requests', () => {
  it('are served without a session, as the token’s principal; tools/list depends on that principal and is private', async () => {
    const res = await post(rpc('tools/list'));
    expect(res.status).toBe(200);
    expect(res.headers.get('mcp-session-id')).toBeNull();
    const list = (await answer(res)).result!;
    expect(list).toMatchObject({ ttlMs: 0, cacheScope: 'private' });
    // The same tools, byte for byte, as a 2025-11-25 session lists (the snapshot file): only the envelope differs.
    const snapshot = readFileSync(new URL('../__snapshots__/tools-list.json', import.meta.url), 'utf8');
    expect(JSON.stringify(list.tools, null, 2)).toBe(snapshot);
    const readerList = (await answer(await post(rpc('tools/list'), {}, reader))).result!;
    expect((readerList.tools as { name: string }[]).map((t) => t.name).sort()).toEqual([
      'guard_status',
      'kb_get_article',
      'kb_search',
      'ticket_get',
      'ticket_search',
    ]);
    const status = (await answer(await post(rpc('tools/call', { name: 'guard_status', arguments: {} }), {}, reader)))
      .result!;
    expect(status.structuredContent).toMatchObject({
      principal: 'kb-reader',
      task: { id: 'principal:kb-reader', identified_by: 'principal' },
    });
    expect(http.sessions.size).toBe(0);
  });

  it('need a valid bearer token: 401 with WWW-Authenticate: Bearer, also for a revoked one', async () => {
    const none = await post(rpc('tools/list'), {}, null);
    expect(none.status).toBe(401);
    expect(none.headers.get('www-authenticate')).toMatch(/^Bearer /);
    const t = app.sqlite.tokens.create('helpdesk-agent', 'to revoke');
    app.sqlite.tokens.revoke(t.id);
    const revoked = await post(rpc('tools/list'), {}, t.token);
    expect(revoked.status).toBe(401);
  });

  it('get the same Host and Origin checks and body limit as 2025 sessions', async () => {
    expect(await postWithHost(rpc('tools/list'), 'evil.example')).toBe(403);
    const origin = await post(rpc('tools/list'), { origin: 'https://evil.example' });
    expect(origin.status).toBe(403);
    const big = await post(rpc('tools/call', { name: 'kb_search', arguments: { query: 'x'.repeat(1_100_000) } }));
    expect(big.status).toBe(413);
  });

  it('hand the verified token to the handler on both eras (ctx.http.authInfo), as on 2025 sessions', async () => {
    const seen: unknown[] = [];
    const pipeline = app.pipeline;
    app.pipeline = (call) => (seen.push(call.mcp?.http?.authInfo?.extra?.principal), pipeline(call));
    try {
      await answer(await post(rpc('tools/call', { name: 'guard_status', arguments: {} }), {}, reader));
      const init = await fetch(`${http.url}/mcp`, {
        method: 'POST',
        headers: {
          'content-type': 'application/json',
          accept: 'application/json, text/event-stream',
          authorization: `Bearer ${agent}`,
        },
        body: JSON.stringify({
          jsonrpc: '2.0',
          id: 0,
          method: 'initialize',
          params: { protocolVersion: '2025-11-25', capabilities: {}, clientInfo: { name: 'x', version: '1' } },
        }),
      });
      const sid = init.headers.get('mcp-session-id')!;
      const call = await fetch(`${http.url}/mcp`, {
        method: 'POST',
        headers: {
          'content-type': 'application/json',
          accept: 'application/json, text/event-stream',
          authorization: `Bearer ${agent}`,
          'mcp-session-id': sid,
          'mcp-protocol-version': '2025-11-25',
        },
        body: JSON.stringify({
          jsonrpc: '2.0',
          id: 1,
          method: 'tools/call',
          params: { name: 'guard_status', arguments: {} },
        }),
      });
      await answer(call);
      expect(seen).toEqual(['kb-reader', 'helpdesk-agent']);
    } finally {
      app.pipeline = pipeline;
    }
  });

  it('cannot ride on a 2025 session of another principal: the token decides, never the session id', async () => {
    const init = await fetch(`${http.url}/mcp`, {
      method: 'POST',
      headers: {
        'content-type': 'application/json',
        accept: 'application/json, text/event-stream',
        authorization: `Bearer ${agent}`,
      },
      body: JSON.stringify({
        jsonrpc: '2.0',
        id: 0,
        method: 'initialize',
        params: { protocolVersion: '2025-11-25', capabilities: {}, clientInfo: { name: 'x', version: '1' } },
      }),
    });
    const sid = init.headers.get('mcp-session-id')!;
    expect(sid).toBeTruthy();
    const res = await post(
      rpc('tools/call', { name: 'guard_status', arguments: {} }),
      { 'mcp-session-id': sid },
      reader,
    );
    // A 2026-07-28 request has no session: the header is not looked at, and the reader stays the reader.
    expect(res.status).toBe(200);
    expect((await answer(res)).result!.structuredContent).toMatchObject({
      principal: 'kb-reader',
      // 2026-07-28 over HTTP without a task id: the session header is not looked at; the principal is the task.
      task: { id: 'principal:kb-reader', identified_by: 'principal' },
    });
  });
});
