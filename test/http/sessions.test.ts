/**
 * Session limits over real HTTP (startHttp in process): per principal (policy session.max_per_principal) and per
 * process (HttpOptions.maxSessions), with LRU eviction of idle sessions and 429/503 + Retry-After otherwise.
 */
import { runInNewContext } from 'node:vm';
import { setFlagsFromString } from 'node:v8';
import { afterEach, describe, expect, it } from 'vitest';
import type { SqliteApp as App } from '../../src/app.js';
import { startHttp, type RunningHttp } from '../../src/http/app.js';
import { testApp } from '../helpers/harness.js';
import { demoPolicy } from '../helpers/policy-builder.js';
import { until } from '../helpers/planner.js';

setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;

let app: App | undefined;
let http: RunningHttp | undefined;
afterEach(async () => {
  await http?.close();
  app?.close();
  http = app = undefined;
});

async function start(opts: { maxSessions?: number; perPrincipal?: number } = {}) {
  // dedupe_window 0 for software_install: the busy calls below are the same action under different keys, which
  // would otherwise be one action (IN_PROGRESS at once) and never keep a session busy. The limit tests run with 8
  // sessions per principal (the default is 64) to stay small.
  app = testApp({
    // 8 sessions per principal (the default is 64) keep the eviction tests small.
    policy: demoPolicy()
      .tool('software_install', { dedupe_window: '0s' })
      .session({ max_per_principal: opts.perPrincipal ?? 8 })
      .parse(),
  });
  http = await startHttp(app, {
    host: '127.0.0.1',
    port: 0,
    ...(opts.maxSessions ? { maxSessions: opts.maxSessions } : {}),
  });
  return { app, http, url: `${http.url}/mcp` };
}
const tokenFor = (a: App, principal: string) => a.sqlite.tokens.create(principal, 'test').token;

const INIT = {
  jsonrpc: '2.0',
  id: 1,
  method: 'initialize',
  params: { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: 'flood', version: '1' } },
};
const headers = (token: string, sid?: string) => ({
  'content-type': 'application/json',
  accept: 'application/json, text/event-stream',
  authorization: `Bearer ${token}`,
  ...(sid ? { 'mcp-session-id': sid, 'mcp-protocol-version': '2025-06-18' } : {}),
});
async function initialize(url: string, token: string) {
  const res = await fetch(url, { method: 'POST', headers: headers(token), body: JSON.stringify(INIT) });
  const text = await res.text();
  return {
    status: res.status,
    sid: res.headers.get('mcp-session-id') ?? undefined,
    retryAfter: res.headers.get('retry-after'),
    text,
  };
}
async function listTools(url: string, token: string, sid: string) {
  const res = await fetch(url, {
    method: 'POST',
    headers: headers(token, sid),
    body: JSON.stringify({ jsonrpc: '2.0', id: 2, method: 'tools/list', params: {} }),
  });
  return { status: res.status, text: await res.text() };
}
/**
 * A tools/call that waits for an IT approver (wait_seconds: 30): the session is busy while it is open. Each with its
 * own key and no dedupe window (see start): identical concurrent calls would be answered IN_PROGRESS at once.
 */
async function busyCall(url: string, token: string, sid: string, n: number) {
  const ac = new AbortController();
  const res = await fetch(url, {
    method: 'POST',
    headers: headers(token, sid),
    signal: ac.signal,
    body: JSON.stringify({
      jsonrpc: '2.0',
      id: 3,
      method: 'tools/call',
      params: {
        name: 'software_install',
        arguments: {
          user: 'jdoe',
          package: 'adobe-acrobat-pro',
          reason: 'needs to edit signed PDFs',
          idempotency_key: `busy-call-${n}`,
        },
      },
    }),
  });
  expect(res.status).toBe(200);
  return () => ac.abort();
}
/** A standalone SSE stream (GET /mcp), as SDK clients keep open: it does not make the session busy. */
async function openStream(url: string, token: string, sid: string) {
  const ac = new AbortController();
  const res = await fetch(url, {
    method: 'GET',
    headers: { ...headers(token, sid), accept: 'text/event-stream' },
    signal: ac.signal,
  });
  expect(res.status).toBe(200);
  return () => ac.abort();
}
const heapMb = () => {
  gc();
  return process.memoryUsage().heapUsed / 2 ** 20;
};

describe('HTTP session limits', () => {
  it('default to 64 per principal: twenty clients of one principal all keep their sessions', async () => {
    app = testApp(); // the built-in policy, no session: limit of its own
    expect(app.policy.session.maxPerPrincipal).toBe(64);
    http = await startHttp(app, { host: '127.0.0.1', port: 0 });
    const url = `${http.url}/mcp`;
    const token = tokenFor(app, 'helpdesk-agent');
    const sids: string[] = [];
    for (let i = 0; i < 20; i++) sids.push((await initialize(url, token)).sid!);
    for (const sid of sids) expect((await listTools(url, token, sid)).status).toBe(200);
    expect(http.sessions.stats().evicted).toBe(0);
  });

  it('an evicted session answers 404 with a JSON-RPC error saying why and to initialize again', async () => {
    const { app, url } = await start({ perPrincipal: 2 });
    const token = tokenFor(app, 'kb-reader');
    const sids: string[] = [];
    for (let i = 0; i < 3; i++) sids.push((await initialize(url, token)).sid!);
    const gone = await listTools(url, token, sids[0]!);
    expect(gone.status).toBe(404);
    expect(JSON.parse(gone.text)).toMatchObject({
      jsonrpc: '2.0',
      error: {
        code: -32000,
        message:
          'Session not found: it was closed because kb-reader opened more than session.max_per_principal (2) sessions and this was its least recently used idle one. Send initialize without Mcp-Session-Id to start a new session.',
      },
    });
    const unknown = await listTools(url, token, 'no-such-session');
    expect(JSON.parse(unknown.text).error.message).toMatch(/Send initialize without Mcp-Session-Id/);
  });

  // About 10 s on an idle machine, 25 s when the machine is shared: the default 30 s leaves too little room.
  it(
    '3,000 initializes from one principal: never more than max_per_principal live, bounded heap, still serving',
    { timeout: 90_000 },
    async () => {
      const { app, http, url } = await start();
      const limit = app.policy.session.maxPerPrincipal;
      expect(limit).toBe(8);
      const token = tokenFor(app, 'helpdesk-agent');
      for (let i = 0; i < 50; i++) await initialize(url, token); // warm up
      const before = heapMb();
      const sids: string[] = [];
      let peak = 0;
      const started = Date.now();
      // Four clients at a time: each next initialize finds an idle session to displace.
      for (let i = 0; i < 3000; i += 4) {
        const batch = await Promise.all([0, 1, 2, 3].map(() => initialize(url, token)));
        for (const r of batch) {
          expect(r.status, r.text).toBe(200);
          sids.push(r.sid!);
        }
        peak = Math.max(peak, http.sessions.size);
      }
      const after = heapMb();
      const ms = Date.now() - started;
      console.log(
        `3000 sessions in ${ms} ms; heap ${before.toFixed(1)} MB -> ${after.toFixed(1)} MB; live ${http.sessions.size}, peak ${peak}`,
      );
      expect(peak).toBeLessThanOrEqual(limit);
      expect(http.sessions.size).toBeLessThanOrEqual(limit);
      expect(http.sessions.stats().peak).toBeLessThanOrEqual(limit);
      // Without limits: ~25 KB per session, +75 MB for this run. With them it stays flat.
      expect(after - before).toBeLessThan(10);
      // The newest session works; an evicted one is gone (404: the client starts a new session).
      const last = await listTools(url, token, sids.at(-1)!);
      expect(last.status).toBe(200);
      expect(last.text).toContain('kb_search');
      expect((await listTools(url, token, sids[0]!)).status).toBe(404);
      // A burst of concurrent initializes cannot overshoot: slots are taken before the first await.
      const burst = await Promise.all(Array.from({ length: 40 }, () => initialize(url, token)));
      expect(burst.every((r) => r.status === 200 || r.status === 429)).toBe(true);
      expect(burst.filter((r) => r.status === 200).length).toBeGreaterThanOrEqual(limit);
      expect(http.sessions.stats().peak).toBeLessThanOrEqual(limit);
      // The flood did not touch other principals.

      const reader = tokenFor(app, 'kb-reader');
      expect((await initialize(url, reader)).status).toBe(200);
    },
  );

  it('refuses with 429 + Retry-After when all of the principal’s sessions are busy; evicts once one is idle', async () => {
    const { app, http, url } = await start();
    const token = tokenFor(app, 'helpdesk-agent');
    const calls: (() => void)[] = [];
    const sids: string[] = [];
    for (let i = 0; i < 8; i++) {
      const r = await initialize(url, token);
      sids.push(r.sid!);
      calls.push(await busyCall(url, token, r.sid!, i));
    }
    const refused = await initialize(url, token);
    expect(refused.status).toBe(429);
    expect(Number(refused.retryAfter)).toBeGreaterThan(0);
    expect(JSON.parse(refused.text)).toMatchObject({
      jsonrpc: '2.0',
      id: 1,
      error: { code: -32000, message: expect.stringMatching(/8 sessions/) },
    });
    expect(http.sessions.size).toBe(8);
    // All 8 still work.
    for (const sid of sids) expect((await listTools(url, token, sid)).status).toBe(200);
    // One call ends: that session is now idle, and it is the one displaced.
    calls[3]!();
    await until('the server to see call 3 end', 5_000, () =>
      http.sessions.inFlight(sids[3]!) === 0 ? true : undefined,
    );
    const ok = await initialize(url, token);
    expect(ok.status).toBe(200);
    expect(http.sessions.size).toBe(8);
    expect((await listTools(url, token, sids[3]!)).status).toBe(404);
    expect((await listTools(url, token, sids[2]!)).status).toBe(200);
    for (const c of calls) c();
  });

  it('an open GET stream does not pin a session: the least recently used one is displaced', async () => {
    const { app, http, url } = await start();
    const token = tokenFor(app, 'kb-reader');
    const sids: string[] = [];
    const streams: (() => void)[] = [];
    for (let i = 0; i < 8; i++) {
      const r = await initialize(url, token);
      sids.push(r.sid!);
      streams.push(await openStream(url, token, r.sid!));
    }
    expect((await listTools(url, token, sids[0]!)).status).toBe(200); // 0 is now the most recently used
    expect((await initialize(url, token)).status).toBe(200);
    expect(http.sessions.size).toBe(8);
    expect((await listTools(url, token, sids[1]!)).status).toBe(404);
    expect((await listTools(url, token, sids[0]!)).status).toBe(200);
    for (const s of streams) s();
  });

  it('the process limit: 503 + Retry-After for a principal with nothing of its own to displace', async () => {
    const { app, http, url } = await start({ maxSessions: 10 });
    const a = tokenFor(app, 'helpdesk-agent');
    const b = tokenFor(app, 'kb-reader');
    const c = tokenFor(app, 'it-approver');
    for (let i = 0; i < 8; i++) expect((await initialize(url, a)).status).toBe(200);
    for (let i = 0; i < 2; i++) expect((await initialize(url, b)).status).toBe(200);
    expect(http.sessions.size).toBe(10);
    // b displaces its own idle session; c has none and another principal's are not its to take.
    expect((await initialize(url, b)).status).toBe(200);
    const refused = await initialize(url, c);
    expect(refused.status).toBe(503);
    expect(Number(refused.retryAfter)).toBeGreaterThan(0);
    expect(JSON.parse(refused.text)).toMatchObject({ jsonrpc: '2.0', error: { code: -32000 } });
    expect(http.sessions.size).toBe(10);
  });
});
