import { join } from 'node:path';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import type { CallToolResult } from '@modelcontextprotocol/sdk/types.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli, serveHttp, type Served } from '../helpers/cli.js';
import { tempDir } from '../helpers/harness.js';

let tmp: ReturnType<typeof tempDir>;
let db: string;
let served: Served;

async function connectHttp(url: string, token: string) {
  const client = new Client({ name: 'e2e', version: '1.0.0' });
  const transport = new StreamableHTTPClientTransport(new URL(url), {
    requestInit: { headers: { Authorization: `Bearer ${token}` } },
  });
  await client.connect(transport);
  return { client, transport };
}
const code = (r: CallToolResult) => (r._meta?.['itguard/error'] as { code?: string } | undefined)?.code;

beforeAll(async () => {
  tmp = tempDir();
  db = join(tmp.dir, 'itguard.db');
  served = await serveHttp(db);
});
afterAll(async () => {
  await served?.stop();
  tmp.cleanup();
});

describe('serve --http', () => {
  it('prints a demo token once on a new database, and serves /healthz', async () => {
    expect(served.demoToken).toMatch(/^itg_/);
    expect(served.stderr()).toContain('npx @modelcontextprotocol/inspector@latest --cli');
    const h = await fetch(new URL('/healthz', served.url));
    expect(await h.json()).toMatchObject({ status: 'ok', kill_switch: 'off' });
  });

  it('lists tools and runs kb_search + ticket_create/ticket_get with the demo token', async () => {
    const { client } = await connectHttp(served.url, served.demoToken!);
    const names = (await client.listTools()).tools.map((t) => t.name);
    expect(names).toEqual(expect.arrayContaining(['kb_search', 'ticket_create', 'guard_status']));
    const s = (await client.callTool({
      name: 'kb_search',
      arguments: { query: 'vpn keeps disconnecting' },
    })) as CallToolResult;
    expect((s.structuredContent as { results: { title: string }[] }).results[0]!.title).toMatch(/VPN/i);
    const c = (await client.callTool({
      name: 'ticket_create',
      arguments: { summary: 'Monitor flickers', requester: 'jdoe', reason: 'user asked' },
    })) as CallToolResult;
    const key = (c.structuredContent as { key: string }).key;
    expect(key).toMatch(/^IT-\d+$/);
    const g = (await client.callTool({ name: 'ticket_get', arguments: { key } })) as CallToolResult;
    expect((g.structuredContent as { ticket: { summary: string } }).ticket.summary).toBe('Monitor flickers');
    await client.close();
  });

  it('401 with WWW-Authenticate: Bearer without a token or with a wrong or revoked one', async () => {
    const init = {
      jsonrpc: '2.0',
      id: 1,
      method: 'initialize',
      params: { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: 'x', version: '1' } },
    };
    const post = (headers: Record<string, string>) =>
      fetch(served.url, {
        method: 'POST',
        headers: { 'content-type': 'application/json', accept: 'application/json, text/event-stream', ...headers },
        body: JSON.stringify(init),
      });
    const none = await post({});
    expect(none.status).toBe(401);
    expect(none.headers.get('www-authenticate')).toMatch(/^Bearer /);
    expect((await post({ authorization: 'Bearer itg_nope' })).status).toBe(401);
    const created = runCli(['token', 'create', '--principal', 'kb-reader', '--db', db]);
    expect(created.code).toBe(0);
    const tok = created.stdout.trim();
    expect(tok).toMatch(/^itg_\S+$/);
    expect((await post({ authorization: `Bearer ${tok}` })).status).toBe(200);
    const id = tok.split('_')[1]!;
    expect(runCli(['token', 'revoke', id, '--db', db]).code).toBe(0);
    expect((await post({ authorization: `Bearer ${tok}` })).status).toBe(401);
  });

  it('403 for a foreign Origin or Host; 413 for an oversized body', async () => {
    const headers = {
      'content-type': 'application/json',
      accept: 'application/json, text/event-stream',
      authorization: `Bearer ${served.demoToken}`,
    };
    const foreign = await fetch(served.url, {
      method: 'POST',
      headers: { ...headers, origin: 'https://evil.example' },
      body: '{}',
    });
    expect(foreign.status).toBe(403);
    const own = new URL(served.url);
    const same = await fetch(served.url, {
      method: 'POST',
      headers: { ...headers, origin: `http://127.0.0.1:${own.port}` },
      body: '{}',
    });
    expect(same.status).not.toBe(403);
    const huge = await fetch(served.url, {
      method: 'POST',
      headers,
      body: JSON.stringify({ x: 'a'.repeat(2_000_000) }),
    });
    expect(huge.status).toBe(413);
    const { request } = await import('node:http');
    const status = await new Promise<number>((resolve, reject) => {
      const req = request(
        { host: '127.0.0.1', port: own.port, path: '/healthz', headers: { host: 'evil.example' } },
        (res) => resolve(res.statusCode ?? 0),
      );
      req.on('error', reject);
      req.end();
    });
    expect(status).toBe(403);
  });

  it('binds a session to the principal that opened it', async () => {
    const { transport, client } = await connectHttp(served.url, served.demoToken!);
    const sid = transport.sessionId!;
    const other = runCli(['token', 'create', '--principal', 'kb-reader', '--db', db]).stdout.trim();
    const res = await fetch(served.url, {
      method: 'POST',
      headers: {
        'content-type': 'application/json',
        accept: 'application/json, text/event-stream',
        authorization: `Bearer ${other}`,
        'mcp-session-id': sid,
        'mcp-protocol-version': '2025-06-18',
      },
      body: JSON.stringify({ jsonrpc: '2.0', id: 9, method: 'tools/list', params: {} }),
    });
    expect(res.status).toBe(403);
    // the owner still can
    expect((await client.listTools()).tools.length).toBeGreaterThan(0);
    await client.close();
  });

  it('kill switch engaged from the CLI makes this running server refuse the next call; resume restores it', async () => {
    const { client } = await connectHttp(served.url, served.demoToken!);
    expect(runCli(['kill', '--reason', 'e2e drill', '--db', db]).code).toBe(0);
    const r = (await client.callTool({ name: 'kb_search', arguments: { query: 'printer' } })) as CallToolResult;
    expect(code(r)).toBe('KILL_SWITCH_ENGAGED');
    expect(((await (await fetch(new URL('/healthz', served.url))).json()) as { kill_switch: string }).kill_switch).toBe(
      'engaged',
    );
    expect(runCli(['resume', '--reason', 'e2e drill over', '--db', db]).code).toBe(0);
    const ok = (await client.callTool({ name: 'kb_search', arguments: { query: 'printer' } })) as CallToolResult;
    expect(ok.isError).toBeFalsy();
    await client.close();
  });

  it('a scripted client hammering ticket_create with small variations stops at the cap with a reset time', async () => {
    const { client } = await connectHttp(served.url, served.demoToken!);
    const results: CallToolResult[] = [];
    for (let i = 0; i < 8; i++) {
      results.push(
        (await client.callTool({
          name: 'ticket_create',
          arguments: { summary: `Outlook crash #${i}`, requester: 'mgarcia', reason: 'loop' },
        })) as CallToolResult,
      );
    }
    const firstCapped = results.findIndex((r) => code(r) === 'CAP_EXCEEDED');
    expect(firstCapped).toBe(5); // tickets-per-requester: 5 per hour
    const meta = results[5]!._meta!['itguard/error'] as {
      rule: string;
      resets_at: string;
      used: number;
      limit: number;
    };
    expect(meta).toMatchObject({ rule: 'tickets-per-requester', used: 5, limit: 5 });
    expect(Date.parse(meta.resets_at)).toBeGreaterThan(Date.now());
    const caps = JSON.parse(runCli(['caps', '--json', '--db', db]).stdout) as { rule: string; used: number }[];
    expect(caps.find((c) => c.rule === 'tickets-per-requester')!.used).toBe(5);
    await client.close();
  });

  it('retrying a write with the same key never makes a second ticket, across sessions', async () => {
    const a = await connectHttp(served.url, served.demoToken!);
    const args = {
      summary: 'Timed out write',
      requester: 'asmith',
      reason: 'retry',
      idempotency_key: 'http-retry-0001',
    };
    const first = (await a.client.callTool({ name: 'ticket_create', arguments: args })) as CallToolResult;
    await a.client.close();
    const b = await connectHttp(served.url, served.demoToken!);
    const again = (await b.client.callTool({ name: 'ticket_create', arguments: args })) as CallToolResult;
    expect((again.structuredContent as { key: string }).key).toBe((first.structuredContent as { key: string }).key);
    expect(again._meta?.['itguard/replay']).toBeDefined();
    await b.client.close();
  });

  it('every call, allowed or refused, is in the audit, and the chain verifies', async () => {
    const tail = runCli(['audit', 'tail', '--n', '200', '--json', '--db', db]);
    const rows = JSON.parse(tail.stdout) as { event: string; code: string | null; tool: string | null }[];
    expect(rows.some((r) => r.event === 'call.outcome' && r.tool === 'ticket_create')).toBe(true);
    // Which step records the refusal (the early check, or the re-check before the side effect) is not the point: the code is.
    expect(
      rows.some((r) => (r.event === 'call.denied' || r.event === 'call.outcome') && r.code === 'KILL_SWITCH_ENGAGED'),
    ).toBe(true);
    expect(rows.some((r) => r.event === 'killswitch.engaged')).toBe(true);
    const v = runCli(['audit', 'verify', '--db', db]);
    expect(v.code).toBe(0);
    expect(v.stdout).toMatch(/audit chain OK/);
    // The first-start banner shows the demo token once, by design; no log line ever carries a token.
    const logLines = served
      .stderr()
      .split('\n')
      .filter((l) => l.startsWith('{'));
    expect(logLines.length).toBeGreaterThan(1);
    expect(logLines.join('\n')).not.toMatch(/itg_[a-z0-9]+_/);
  });
});
