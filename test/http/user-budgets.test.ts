/**
 * Per-user bounds over OAuth (DESIGN §3 step 4, "user"): a `per: user` budget counts the human the agent acts for
 * (on_behalf_of_id = issuer + sub), whatever task ids the agent invents or however often it reconnects; another
 * user of the same principal is not affected. Against the suite's real OpenID provider (test/helpers/idp.ts).
 */
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import type { CallToolResult } from '@modelcontextprotocol/sdk/types.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { SqliteApp as App } from '../../src/app.js';
import { startHttp, type RunningHttp } from '../../src/http/app.js';
import { codeOf, testApp } from '../helpers/harness.js';
import { demoPolicy } from '../helpers/policy-builder.js';
import { startIdp, type TestIdp } from '../helpers/idp.js';

const AUDIENCE = 'https://itguard.test/mcp';
let idp: TestIdp;
let app: App;
let http: RunningHttp;
let url: string;

beforeAll(async () => {
  idp = await startIdp({
    resources: [AUDIENCE],
    accounts: {
      alice: { email: 'alice@example.com', email_verified: true, itguard_principal: 'helpdesk-agent' },
      bob: { email: 'bob@example.com', email_verified: true, itguard_principal: 'helpdesk-agent' },
    },
  });
  app = testApp({
    policy: demoPolicy()
      .budgets([{ name: 'user-calls-per-hour', window: 'hour', per: 'user', limit: 5 }])
      .set('auth', { issuers: [idp.issuer], audience: AUDIENCE, principal_claim: 'itguard_principal' })
      .parse(),
  });
  http = await startHttp(app, { host: '127.0.0.1', port: 0 });
  url = `${http.url}/mcp`;
});
afterAll(async () => {
  await http?.close();
  app?.close();
  await idp?.close();
});

/** One call from a fresh connection under a new task id: what a runaway that rotates ids and reconnects does. */
async function callAs(token: string, task: string, query: string): Promise<CallToolResult> {
  const client = new Client({ name: 'user-budget-test', version: '1' });
  const transport = new StreamableHTTPClientTransport(new URL(url), {
    requestInit: { headers: { Authorization: `Bearer ${token}` } },
  });
  await client.connect(transport);
  try {
    return (await client.callTool({
      name: 'kb_search',
      arguments: { query, limit: 1 },
      _meta: { 'io.itguard/task': task },
    })) as CallToolResult;
  } finally {
    await transport.terminateSession().catch(() => undefined);
    await client.close();
  }
}

describe('per: user budgets over OAuth', () => {
  it('stop user A across rotating task ids and reconnects, while user B of the same principal works', async () => {
    const alice = await idp.userToken('alice');
    const bob = await idp.userToken('bob');
    const a: CallToolResult[] = [];
    for (let i = 0; i < 8; i++) a.push(await callAs(alice, `alice-task-${i}`, `vpn question ${i}`));
    expect(a.map((r) => codeOf(r) ?? 'ok')).toEqual([...Array(5).fill('ok'), ...Array(3).fill('BUDGET_EXHAUSTED')]);
    const meta = a[5]!._meta?.['itguard/error'] as Record<string, unknown>;
    expect(meta).toMatchObject({ budget: 'user-calls-per-hour', level: 'user', used: 5, limit: 5 });
    expect(JSON.stringify(a[5]!.content)).toContain('alice@example.com');
    const b: CallToolResult[] = [];
    for (let i = 0; i < 3; i++) b.push(await callAs(bob, `bob-task-${i}`, `printer question ${i}`));
    expect(b.map((r) => codeOf(r) ?? 'ok')).toEqual(['ok', 'ok', 'ok']);
    // The usage is kept per person (issuer + sub), never under the display e-mail.
    const keys = app.sqlite.budgets.usage(app.policy.budgets, Date.now()).map((u) => u.scopeKey);
    expect(keys.sort()).toEqual([`user ${idp.issuer} sub:alice`, `user ${idp.issuer} sub:bob`]);
  });
});
