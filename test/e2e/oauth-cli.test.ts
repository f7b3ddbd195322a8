/**
 * The built CLI with an `auth:` block, as a deployment would run it: `serve --http` against a real OpenID provider on
 * loopback, static tokens off, an MCP client with a token from the provider, then the CLI's own view of it.
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import type { CallToolResult } from '@modelcontextprotocol/sdk/types.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli, serveHttp, type Served } from '../helpers/cli.js';
import { tempDir } from '../helpers/harness.js';
import { demoPolicy } from '../helpers/policy-builder.js';
import { startIdp, type TestIdp } from '../helpers/idp.js';

const AUDIENCE = 'https://itguard.test/mcp';
let tmp: ReturnType<typeof tempDir>;
let idp: TestIdp;
let served: Served;
let db: string;
let policy: string;

beforeAll(async () => {
  tmp = tempDir();
  idp = await startIdp({
    resources: [AUDIENCE],
    accounts: { alice: { email: 'alice@example.com', groups: ['it-helpdesk'] }, carol: { groups: ['staff'] } },
  });
  policy = join(tmp.dir, 'itguard.yaml');
  writeFileSync(
    policy,
    demoPolicy()
      .set('auth', {
        issuers: [idp.issuer],
        audience: AUDIENCE,
        principals_from_groups: { 'it-helpdesk': 'helpdesk-agent' },
        static_tokens: false,
      })
      .yaml(),
  );
  db = join(tmp.dir, 'itguard.db');
  served = await serveHttp(db, ['--policy', policy]);
});
afterAll(async () => {
  await served?.stop();
  await idp?.close();
  tmp?.cleanup();
});

describe('serve --http with auth: (built CLI)', () => {
  it('prints no demo token when static tokens are off, and says where the metadata is', () => {
    expect(served.demoToken).toBeUndefined();
    expect(served.stderr()).toContain(`OAuth resource ${AUDIENCE} (issuers: ${idp.issuer})`);
    expect(runCli(['policy', 'check', policy]).stdout).toContain(
      `auth: OAuth access tokens for ${AUDIENCE} from ${idp.issuer}; principal from groups (it-helpdesk → helpdesk-agent); static tokens off`,
    );
  });

  it('challenges without a token, serves a provider token’s user, and the CLI shows whom the agent acted for', async () => {
    const none = await fetch(served.url, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: '{}',
    });
    expect(none.status).toBe(401);
    await none.text();
    expect(none.headers.get('www-authenticate')).toBe(
      'Bearer resource_metadata="https://itguard.test/.well-known/oauth-protected-resource/mcp"',
    );
    const prm = await fetch(new URL('/.well-known/oauth-protected-resource/mcp', served.url));
    expect(await prm.json()).toMatchObject({ resource: AUDIENCE, authorization_servers: [idp.issuer] });

    const token = await idp.userToken('alice');
    const client = new Client({ name: 'e2e-oauth', version: '1.0.0' });
    await client.connect(
      new StreamableHTTPClientTransport(new URL(served.url), {
        requestInit: { headers: { Authorization: `Bearer ${token}` } },
      }),
    );
    const r = (await client.callTool({
      name: 'ticket_create',
      arguments: { summary: 'Dock does not charge', requester: 'jdoe', reason: 'user asked in chat' },
    })) as CallToolResult;
    expect(r.isError).toBeFalsy();
    await client.close();
    const noPrincipal = await fetch(served.url, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${await idp.userToken('carol')}` },
      body: '{}',
    });
    expect(noPrincipal.status).toBe(403);
    await noPrincipal.text(); // read to the end, so the pooled connection is not left mid-response

    const tail = runCli(['audit', 'tail', '--n', '5', '--db', db, '--policy', policy]);
    expect(tail.stdout).toMatch(/call\.intent +helpdesk-agent +ticket_create .* for=alice@example\.com/);
    expect(tail.stdout).toMatch(/call\.outcome +helpdesk-agent +ticket_create ok .* for=alice@example\.com/);
    expect(runCli(['audit', 'verify', '--db', db, '--policy', policy]).code).toBe(0);
    // The token appears nowhere the server writes.
    expect(served.stderr()).not.toContain(token);
    expect(runCli(['audit', 'export', '--db', db, '--policy', policy]).stdout).not.toContain(token.split('.')[2]!);
  });

  it('refuses static tokens; token create says so', async () => {
    const made = runCli(['token', 'create', '--principal', 'helpdesk-agent', '--db', db, '--policy', policy]);
    expect(made.code).toBe(0);
    expect(made.stderr).toContain('auth.static_tokens: false');
    const r = await fetch(served.url, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${made.stdout.trim()}` },
      body: '{}',
    });
    expect(r.status).toBe(401);
  });
});
