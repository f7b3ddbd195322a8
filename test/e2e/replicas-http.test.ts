/**
 * Several replicas behind nginx (DESIGN §6 Replicas), on each store: three built `serve --http` processes on one
 * SQLite file, then on one PostgreSQL database (STORES narrows it), each
 * with its own ITGUARD_REPLICA_ID and the same ITGUARD_STATE_KEY and ITGUARD_AUDIT_KEY, and Debian's nginx in
 * front, configured from deploy/nginx/itguard.conf (test/helpers/nginx.ts).
 *
 *  - 2025-11-25: the session's id names its replica, and every request of the session (calls, the answer to a
 *    pushed elicitation) reaches that replica through nginx; a session id sent to another replica answers 404 and
 *    the client starts a new session; when the session's replica stops, nginx's backup sends its requests to
 *    another, which answers 404, and the client re-initializes onto a live replica.
 *  - 2026-07-28: no session, calls spread over every replica, and an MRTR confirm whose retry reaches another
 *    replica than its first round runs once (the requestState is signed with the shared key).
 *  - /healthz through nginx; the body limit is itguard's (413 JSON-RPC), not nginx's.
 * Which replica served a call is read from the replicas' own logs (debug `tool call` lines carry the trace id)
 * and from nginx's access log (upstream address per request).
 */
import { readFileSync } from 'node:fs';
import {
  Client,
  StreamableHTTPClientTransport,
  isInputRequiredResult,
  type CallToolResult,
} from '@modelcontextprotocol/client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli, serveHttp, type Served } from '../helpers/cli.js';
import { tempDir } from '../helpers/harness.js';
import { checkConf, DEPLOY_CONF, nginxMissing, startNginx, type Nginx } from '../helpers/nginx.js';
import { codeOf, traceOf, until, writePolicy } from '../helpers/planner.js';
import { onStore, storeHost, storesUnderTest, type StoreHost, type TestDb } from '../helpers/store-probe.js';
import { demoPolicy } from '../helpers/policy-builder.js';

const missing = nginxMissing();
if (missing) console.warn(`replicas-http: ${missing}`);

const IDS = ['r1', 'r2', 'r3'] as const;
const AUDIT_KEY = 'replicas-audit-key-0123456789';
const reason = 'the user asked in chat';

let tmp: ReturnType<typeof tempDir>;
let tdb: TestDb;
let db: string;
/** What every itguard process and CLI call of the suite's store needs in its environment. */
let env: Record<string, string>;
let policy: string;
let token: string;
const replicas = new Map<string, Served>();
let nginx: Nginx;
const clients: Client[] = [];

const addressOf = (s: Served) => new URL(s.url).host;
const replicaAt = (upstream: string) => [...replicas].find(([, s]) => addressOf(s) === upstream)?.[0];

/** The replicas whose log has a `tool call` line with this trace id (exactly one, once the line is written). */
const servedBy = (trace: string) =>
  until(`the replica that served ${trace}`, 5_000, () => {
    const ids = [...replicas].filter(([, s]) => s.stderr().includes(`"trace_id":"${trace}"`)).map(([id]) => id);
    return ids.length ? ids : undefined;
  });

async function setUp(host: StoreHost) {
  tmp = tempDir();
  tdb = await host.fresh(tmp.dir, 'replicas');
  db = tdb.db;
  policy = writePolicy(tmp.dir, 'replicas', onStore(host.kind, demoPolicy().approvals({ wait_seconds: 2 })));
  env = { ITGUARD_AUDIT_KEY: AUDIT_KEY, ...tdb.env };
  // The file and its demo data are made once, before any replica opens it; the audit chain is keyed from the start.
  const made = runCli(['token', 'create', '--principal', 'helpdesk-agent', '--db', db, '--policy', policy], env);
  expect(made.code, made.stderr).toBe(0);
  token = made.stdout.trim();
  const served = await Promise.all(
    IDS.map((id) =>
      serveHttp(db, ['--policy', policy], { ...env, ITGUARD_REPLICA_ID: id, ITGUARD_LOG_LEVEL: 'debug' }),
    ),
  );
  IDS.forEach((id, i) => replicas.set(id, served[i]!));
  nginx = await startNginx(IDS.map((id) => ({ id, address: addressOf(replicas.get(id)!) })));
}

async function tearDown(host: StoreHost) {
  for (const c of clients.splice(0)) await c.close().catch(() => undefined);
  await nginx?.stop();
  for (const s of replicas.values()) await s.stop();
  replicas.clear();
  await host.stop();
  tmp?.cleanup();
}

/** A 2025-11-25 client (plain initialize) that answers every form elicitation with approve. */
async function legacy(url: string) {
  const client = new Client(
    { name: 'replicas-legacy', version: '1' },
    { capabilities: { elicitation: { form: {} } }, versionNegotiation: { mode: 'legacy' } },
  );
  const asked: unknown[] = [];
  client.setRequestHandler('elicitation/create', async (req) => {
    asked.push(req.params);
    return { action: 'accept', content: { approve: true } };
  });
  const connect = async () => {
    const transport = new StreamableHTTPClientTransport(new URL(url), {
      requestInit: { headers: { Authorization: `Bearer ${token}` } },
    });
    await client.connect(transport);
    expect(client.getNegotiatedProtocolVersion()).toBe('2025-11-25');
    return transport;
  };
  let transport = await connect();
  clients.push(client);
  return {
    client,
    asked,
    sessionId: () => transport.sessionId!,
    call: (name: string, args: Record<string, unknown> = {}) =>
      client.callTool({ name, arguments: args }) as Promise<CallToolResult>,
    /** What a Streamable HTTP client does on 404: drop the session and send initialize again. */
    async reinitialize() {
      await client.close().catch(() => undefined);
      transport = await connect();
    },
  };
}

/** A 2026-07-28 client (pinned: no session) that leaves input_required to the test. */
async function modern(url: string) {
  const client = new Client(
    { name: 'replicas-modern', version: '1' },
    {
      capabilities: { elicitation: { form: {} } },
      versionNegotiation: { mode: { pin: '2026-07-28' } },
      inputRequired: { autoFulfill: false },
    },
  );
  await client.connect(
    new StreamableHTTPClientTransport(new URL(url), {
      requestInit: { headers: { Authorization: `Bearer ${token}` } },
    }),
  );
  clients.push(client);
  return client;
}

type Raw =
  CallToolResult | { resultType: 'input_required'; inputRequests: Record<string, unknown>; requestState: string };
const rawCall = (c: Client, name: string, args: Record<string, unknown>, more: Record<string, unknown> = {}) =>
  c.request({ method: 'tools/call', params: { name, arguments: args, ...more } }, {
    allowInputRequired: true,
  } as never) as Promise<Raw>;
/** The SDK's SdkHttpError of a 404 (its `status` is a getter). */
const is404 = (e: unknown) => (e as { status?: number }).status === 404;
const approve = { confirm: { action: 'accept', content: { approve: true } } };
const jobs = (user: string) => tdb.count('SELECT count(*) AS n FROM install_jobs WHERE username = ?', user);

/** nginx's access log lines of POST /mcp from line `from` on: the replica the id named and the upstream used. */
const mcpPosts = (from = 0) =>
  nginx
    .accessLog()
    .slice(from)
    .filter((l) => l.includes('"POST /mcp '))
    .map((l) => ({
      named: /replica="([^"]*)"/.exec(l)![1]!,
      upstream: replicaAt(/upstream=(\S+)/.exec(l)![1]!.split(', ').at(-1)!),
      status: Number(/upstream_status=(\S+)/.exec(l)![1]!.split(', ').at(-1)),
    }));

describe.skipIf(missing !== undefined).each(storesUnderTest())('replicas behind nginx on %s', (kind) => {
  const host = storeHost(kind);
  beforeAll(() => setUp(host), 90_000);
  afterAll(() => tearDown(host));

  it('the shipped configuration passes nginx -t', async () => {
    expect(await checkConf(readFileSync(DEPLOY_CONF, 'utf8'))).toBeUndefined();
  });

  it('/healthz through nginx names a replica and the store', async () => {
    const seen = new Set<string>();
    for (let i = 0; i < IDS.length; i++) {
      const res = await fetch(`${nginx.url}/healthz`);
      expect(res.status).toBe(200);
      const body = (await res.json()) as { status: string; replica: string; store: unknown };
      expect(body).toMatchObject({ status: 'ok', store: { kind, ok: true }, kill_switch: 'off' });
      seen.add(body.replica);
    }
    // Round-robin: consecutive requests without a session id go to every replica in turn.
    expect([...seen].sort()).toEqual([...IDS]);
  });

  it('2025-11-25: every request of a session reaches the replica its id names, elicitation answers included', async () => {
    const from = nginx.accessLog().length;
    const p = await legacy(`${nginx.url}/mcp`);
    const sid = p.sessionId();
    const home = /^(r\d)\./.exec(sid)?.[1];
    expect(IDS).toContain(home);

    const traces: string[] = [];
    for (let i = 0; i < 5; i++) {
      const r = await p.call('kb_search', { query: `vpn ${i}` });
      expect(r.isError, JSON.stringify(r)).toBeFalsy();
      traces.push(traceOf(r)!);
    }
    const created = await p.call('ticket_create', {
      summary: 'VPN drops every hour',
      requester: 'jdoe',
      reason,
      idempotency_key: 'replicas-legacy-0001',
    });
    expect(created.isError, JSON.stringify(created)).toBeFalsy();
    traces.push(traceOf(created)!);
    // A confirm-tier install: the server asks on the POST's SSE stream, the answer is a POST of the same session.
    const installed = await p.call('software_install', { user: 'sjohansson', package: 'vscode', reason });
    expect(installed.isError, JSON.stringify(installed)).toBeFalsy();
    expect(p.asked).toHaveLength(1);
    traces.push(traceOf(installed)!);

    for (const t of traces) expect(await servedBy(t), t).toEqual([home]);
    // The audit records the session id, whose prefix is the replica.
    expect(
      await tdb.count('SELECT count(*) AS n FROM audit WHERE tool = ? AND session_id = ?', 'ticket_create', sid),
    ).toBeGreaterThan(0);
    // nginx sent every POST that named the session to that replica (initialize named none).
    const posts = mcpPosts(from);
    const named = posts.filter((x) => x.named !== '');
    expect(named.length).toBeGreaterThanOrEqual(traces.length + 1); // the calls, the elicitation answer, …
    for (const x of named) expect(x).toEqual({ named: home, upstream: home, status: expect.any(Number) });
    expect(posts.filter((x) => x.named === '')).toHaveLength(1);
  });

  it('2025-11-25: a session id sent straight to another replica answers 404 naming its replica; the client re-initializes there', async () => {
    const p = await legacy(`${nginx.url}/mcp`);
    const sid = p.sessionId();
    const home = sid.split('.')[0]!;
    const other = IDS.find((id) => id !== home)!;
    const otherUrl = replicas.get(other)!.url;

    const res = await fetch(otherUrl, {
      method: 'POST',
      headers: {
        'content-type': 'application/json',
        accept: 'application/json, text/event-stream',
        authorization: `Bearer ${token}`,
        'mcp-session-id': sid,
        'mcp-protocol-version': '2025-11-25',
      },
      body: JSON.stringify({ jsonrpc: '2.0', id: 7, method: 'tools/list', params: {} }),
    });
    expect(res.status).toBe(404);
    const body = (await res.json()) as { error: { message: string } };
    expect(body.error.message).toContain(`it lives on replica ${home}, and this is replica ${other}`);
    expect(body.error.message).toContain('Send initialize without Mcp-Session-Id');

    // The SDK client with that session, pointed at the other replica: its request fails with 404 …
    const client = new Client({ name: 'replicas-misrouted', version: '1' }, { versionNegotiation: { mode: 'legacy' } });
    clients.push(client);
    const stale = new StreamableHTTPClientTransport(new URL(otherUrl), {
      sessionId: sid,
      requestInit: { headers: { Authorization: `Bearer ${token}` } },
    });
    await client.connect(stale).catch(() => undefined);
    await expect(client.callTool({ name: 'kb_search', arguments: { query: 'vpn' } })).rejects.toSatisfy(is404);
    // … and it starts over with initialize: a new session, which lives on the replica it reached.
    await client.close();
    const fresh = new StreamableHTTPClientTransport(new URL(otherUrl), {
      requestInit: { headers: { Authorization: `Bearer ${token}` } },
    });
    await client.connect(fresh);
    expect(fresh.sessionId).toMatch(new RegExp(`^${other}\\.`));
    const r = (await client.callTool({ name: 'kb_search', arguments: { query: 'vpn' } })) as CallToolResult;
    expect(r.isError).toBeFalsy();
    expect(await servedBy(traceOf(r)!)).toEqual([other]);
    // The first session is untouched on its own replica.
    expect((await p.call('kb_search', { query: 'printer' })).isError).toBeFalsy();
  });

  it('2026-07-28: calls through nginx spread over every replica', async () => {
    const c = await modern(`${nginx.url}/mcp`);
    const served = new Map<string, number>();
    for (let i = 0; i < 3 * IDS.length; i++) {
      const r = (await c.callTool({ name: 'kb_search', arguments: { query: `password ${i}` } })) as CallToolResult;
      expect(r.isError, JSON.stringify(r)).toBeFalsy();
      const [by] = await servedBy(traceOf(r)!);
      served.set(by!, (served.get(by!) ?? 0) + 1);
    }
    expect([...served.keys()].sort()).toEqual([...IDS]);
  });

  it('2026-07-28: an MRTR confirm whose retry reaches another replica runs once', async () => {
    // Explicitly: round 1 on r1, the retry with its requestState on r2.
    const [a, b] = [await modern(replicas.get('r1')!.url), await modern(replicas.get('r2')!.url)];
    const args = { user: 'mrossi', package: 'vscode', reason };
    const first = await rawCall(a, 'software_install', args);
    expect(isInputRequiredResult(first), JSON.stringify(first)).toBe(true);
    const state = (first as Extract<Raw, { resultType: 'input_required' }>).requestState;
    const done = await rawCall(b, 'software_install', args, { requestState: state, inputResponses: approve });
    expect(codeOf(done as CallToolResult), JSON.stringify(done)).toBeUndefined();
    expect(await jobs('mrossi')).toBe(1);
    // The same state again, on the third replica: spent, refused, nothing more runs.
    const c3 = await modern(replicas.get('r3')!.url);
    const again = await rawCall(c3, 'software_install', args, { requestState: state, inputResponses: approve });
    expect(codeOf(again as CallToolResult)).toBe('APPROVAL_DENIED');
    expect(await jobs('mrossi')).toBe(1);

    // Through nginx: round-robin puts the two rounds on different replicas.
    const c = await modern(`${nginx.url}/mcp`);
    for (const user of ['cokafor', 'pnair']) {
      const from = nginx.accessLog().length;
      const r1 = await rawCall(c, 'software_install', { user, package: 'vscode', reason });
      expect(isInputRequiredResult(r1), JSON.stringify(r1)).toBe(true);
      const s = (r1 as Extract<Raw, { resultType: 'input_required' }>).requestState;
      const r2 = await rawCall(
        c,
        'software_install',
        { user, package: 'vscode', reason },
        {
          requestState: s,
          inputResponses: approve,
        },
      );
      expect(codeOf(r2 as CallToolResult), JSON.stringify(r2)).toBeUndefined();
      expect(await jobs(user)).toBe(1);
      const [round1, round2] = mcpPosts(from);
      expect(round1!.upstream).toBeDefined();
      expect(round2!.upstream).not.toBe(round1!.upstream);
    }
  });

  it('the approver console through nginx: signed in on one replica, every later page comes from it', async () => {
    const made = runCli(['token', 'create', '--principal', 'it-approver', '--db', db, '--policy', policy], env);
    expect(made.code, made.stderr).toBe(0);
    const login = await fetch(`${nginx.url}/console/login`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ token: made.stdout.trim() }),
      redirect: 'manual',
    });
    expect(login.status).toBe(303);
    const cookie = /itguard_console=([^;]+)/.exec(login.headers.get('set-cookie') ?? '')![1]!;
    const home = cookie.split('.')[0]!;
    expect(IDS).toContain(home);
    const from = nginx.accessLog().length;
    for (let i = 0; i < 2 * IDS.length; i++) {
      const page = await fetch(`${nginx.url}/console`, { headers: { cookie: `itguard_console=${cookie}` } });
      expect(await page.text()).toContain('data-testid="principal">it-approver<');
    }
    const gets = nginx
      .accessLog()
      .slice(from)
      .filter((l) => l.includes('"GET /console '));
    expect(gets).toHaveLength(2 * IDS.length);
    for (const l of gets) expect(replicaAt(/upstream=(\S+)/.exec(l)![1]!)).toBe(home);
  });

  it('an /mcp body over itguard’s limit gets itguard’s 413, not nginx’s', async () => {
    const res = await fetch(`${nginx.url}/mcp`, {
      method: 'POST',
      headers: {
        'content-type': 'application/json',
        accept: 'application/json, text/event-stream',
        authorization: `Bearer ${token}`,
      },
      body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'ping', params: { pad: 'x'.repeat(1_500_000) } }),
    });
    expect(res.status).toBe(413);
    expect(await res.json()).toMatchObject({ jsonrpc: '2.0', error: { message: 'Request body too large' } });
  });

  it('one audit chain across the replicas verifies under the shared key', () => {
    const r = runCli(['audit', 'verify', '--db', db, '--policy', policy], env);
    expect(r.code, r.stderr + r.stdout).toBe(0);
  });

  // Last: it stops a replica.
  it('2025-11-25: when the session’s replica stops, nginx’s backup answers 404 and the client re-initializes onto a live replica', async () => {
    const p = await legacy(`${nginx.url}/mcp`);
    const home = p.sessionId().split('.')[0]!;
    expect((await p.call('kb_search', { query: 'vpn' })).isError).toBeFalsy();
    await replicas.get(home)!.stop();
    await expect(p.call('kb_search', { query: 'vpn' })).rejects.toSatisfy(is404);
    await p.reinitialize();
    const now = p.sessionId().split('.')[0]!;
    expect(now).not.toBe(home);
    const r = await p.call('kb_search', { query: 'vpn' });
    expect(r.isError).toBeFalsy();
    expect(await servedBy(traceOf(r)!)).toEqual([now]);
    // Health through nginx skips the stopped replica.
    for (let i = 0; i < IDS.length; i++) {
      const h = (await (await fetch(`${nginx.url}/healthz`)).json()) as { replica: string };
      expect(h.replica).not.toBe(home);
    }
  });
});
