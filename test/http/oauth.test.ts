/**
 * itguard as an OAuth 2.1 resource server over real HTTP (startHttp in process), against a real OpenID provider on
 * loopback (test/helpers/idp.ts) and the SDK's own Streamable HTTP client: Protected Resource Metadata, the
 * 401/403 challenges, claims to principals, on_behalf_of in the audit, request_status and the console, sessions bound
 * to the user, static tokens beside OAuth and turned off.
 */
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import type { CallToolResult } from '@modelcontextprotocol/sdk/types.js';
import { decodeJwt, generateKeyPair } from 'jose';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { AddressInfo } from 'node:net';
import express from 'express';
import type { SqliteApp as App } from '../../src/app.js';
import { createOAuthVerifier } from '../../src/auth/oauth.js';
import { authOf, bearerAuth } from '../../src/http/auth.js';
import { decide } from '../../src/guard/decide.js';
import { startHttp, type HttpOptions, type RunningHttp } from '../../src/http/app.js';
import { testApp, textOf, codeOf } from '../helpers/harness.js';
import { demoPolicy, type PolicyDoc } from '../helpers/policy-builder.js';
import { startIdp, type TestIdp } from '../helpers/idp.js';

const AUDIENCE = 'https://itguard.test/mcp';
const PRM_URL = 'https://itguard.test/.well-known/oauth-protected-resource/mcp';
const DEAD_ISSUER = 'http://127.0.0.1:9';

let idp: TestIdp;
let stranger: TestIdp;
beforeAll(async () => {
  idp = await startIdp({
    resources: [AUDIENCE, 'https://other.test/api'],
    accounts: {
      alice: { email: 'alice@example.com', email_verified: true, itguard_principal: 'helpdesk-agent' },
      bob: { email: 'bob@example.com', itguard_principal: 'helpdesk-agent' },
      carol: { email: 'carol@example.com', itguard_principal: 'intern' },
      irene: { email: 'irene@example.com', itguard_principal: 'it-approver' },
      dana: { email: 'dana@example.com', itguard_principal: 'it-approver' },
    },
    machines: {
      'ticket-bot': { itguard_principal: 'helpdesk-agent' },
      'approver-bot': { itguard_principal: 'it-approver' },
    },
  });
  stranger = await startIdp({ resources: [AUDIENCE], accounts: { mallory: { itguard_principal: 'helpdesk-agent' } } });
});
afterAll(async () => {
  await idp?.close();
  await stranger?.close();
});

let app: App | undefined;
let http: RunningHttp | undefined;
let clock: number | undefined;
afterEach(async () => {
  await http?.close();
  app?.close();
  http = app = undefined;
  clock = undefined;
});

/** `auth: null`: no auth block (itguard's own bearer tokens only). */
async function start(o: { auth?: PolicyDoc['auth'] | null; oauth?: HttpOptions['oauth'] } = {}) {
  const auth =
    o.auth === undefined
      ? {
          issuers: [idp.issuer, DEAD_ISSUER],
          audience: AUDIENCE,
          principal_claim: 'itguard_principal',
          required_scopes: ['itguard'],
        }
      : (o.auth ?? undefined);
  app = testApp({
    policy: demoPolicy().approvals({ wait_seconds: 0 }).set('auth', auth).parse(),
    now: () => clock ?? Date.now(),
    executorPollMs: 50,
  });
  http = await startHttp(app, { host: '127.0.0.1', port: 0, ...(o.oauth ? { oauth: o.oauth } : {}) });
  return { app, url: `${http.url}/mcp` };
}

const INIT = {
  jsonrpc: '2.0',
  id: 1,
  method: 'initialize',
  params: { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: 'raw', version: '1' } },
};
const post = (url: string, token?: string, sid?: string, body: unknown = INIT) =>
  fetch(url, {
    method: 'POST',
    headers: {
      'content-type': 'application/json',
      accept: 'application/json, text/event-stream',
      ...(token ? { authorization: `Bearer ${token}` } : {}),
      ...(sid ? { 'mcp-session-id': sid, 'mcp-protocol-version': '2025-06-18' } : {}),
    },
    body: JSON.stringify(body),
  });

async function mcp(url: string, token: string) {
  const client = new Client({ name: 'oauth-test', version: '1.0.0' });
  await client.connect(
    new StreamableHTTPClientTransport(new URL(url), { requestInit: { headers: { Authorization: `Bearer ${token}` } } }),
  );
  const call = async (name: string, args: Record<string, unknown> = {}) =>
    (await client.callTool({ name, arguments: args })) as CallToolResult;
  return { client, call };
}
const traceOf = (r: CallToolResult) => r._meta?.['itguard/trace_id'] as string;

describe('Protected Resource Metadata (RFC 9728)', () => {
  it('is served at /.well-known/oauth-protected-resource and …/mcp, to any origin', async () => {
    await start();
    for (const path of ['/.well-known/oauth-protected-resource', '/.well-known/oauth-protected-resource/mcp']) {
      const r = await fetch(`${http!.url}${path}`, { headers: { origin: 'https://claude.ai' } });
      expect(r.status).toBe(200);
      expect(r.headers.get('access-control-allow-origin')).toBe('*');
      expect(await r.json()).toEqual({
        resource: AUDIENCE,
        authorization_servers: [idp.issuer, DEAD_ISSUER],
        scopes_supported: ['itguard'],
        bearer_methods_supported: ['header'],
        resource_name: 'itguard',
      });
    }
  });

  it('is not served without an auth: block; the challenge then names a realm', async () => {
    const { url } = await start({ auth: null });
    expect((await fetch(`${http!.url}/.well-known/oauth-protected-resource`)).status).toBe(404);
    const r = await post(url);
    expect(r.status).toBe(401);
    expect(r.headers.get('www-authenticate')).toBe('Bearer realm="itguard"');
    expect(await r.json()).toEqual({
      jsonrpc: '2.0',
      id: null,
      error: {
        code: -32000,
        message:
          'Unauthorized: This endpoint needs Authorization: Bearer <token>. Create a token with `itguard token create --principal NAME`, and configure the MCP client to send it as Authorization: Bearer <token>.',
        data: {
          http_status: 401,
          error: 'invalid_token',
          error_description: 'This endpoint needs Authorization: Bearer <token>.',
        },
      },
    });
  });

  it('a revoked static token reads as one in the SDK client: the error carries the sentence to act on', async () => {
    const { app, url } = await start({ auth: null });
    const t = app.sqlite.tokens.create('helpdesk-agent', 'test');
    app.sqlite.tokens.revoke(t.id);
    const err = await mcp(url, t.token).then(
      () => undefined,
      (e: unknown) => e as Error,
    );
    expect(err?.message).toMatch(/Unknown or revoked itguard token\. Create a token with `itguard token create/);
  });

  it('without an auth: block, the OAuth discovery and registration paths say in JSON that static tokens are taken', async () => {
    await start({ auth: null });
    const paths: [string, string][] = [
      ['GET', '/.well-known/oauth-authorization-server'],
      ['GET', '/.well-known/oauth-authorization-server/mcp'],
      ['GET', '/.well-known/openid-configuration'],
      ['GET', '/mcp/.well-known/openid-configuration'],
      ['GET', '/.well-known/oauth-protected-resource'],
      ['GET', '/.well-known/oauth-protected-resource/mcp'],
      ['POST', '/register'],
    ];
    for (const [method, path] of paths) {
      const r = await fetch(`${http!.url}${path}`, {
        method,
        headers: { origin: 'https://evil.example', 'content-type': 'application/json' },
        ...(method === 'POST' ? { body: JSON.stringify({ redirect_uris: ['http://127.0.0.1:9/cb'] }) } : {}),
      });
      expect(r.status, path).toBe(404);
      expect(r.headers.get('content-type'), path).toMatch(/^application\/json/);
      expect(await r.json(), path).toEqual({
        error: 'oauth_not_supported',
        error_description: expect.stringMatching(
          /does not use OAuth: it takes static bearer tokens\. Create one with `itguard token create/,
        ),
      });
    }
  });
});

describe('401 and 403 on /mcp', () => {
  it('no token: 401 pointing at the metadata, with no error code', async () => {
    const { url } = await start();
    const r = await post(url);
    expect(r.status).toBe(401);
    expect(r.headers.get('www-authenticate')).toBe(`Bearer resource_metadata="${PRM_URL}"`);
  });

  const challenge = (description: string) =>
    `Bearer resource_metadata="${PRM_URL}", error="invalid_token", error_description="${description}"`;

  it('wrong audience, wrong issuer, expired, bad signature: 401 invalid_token with a description', async () => {
    const { url } = await start();
    const otherAudience = await idp.userToken('alice', { resource: 'https://other.test/api' });
    const wrongIssuer = await stranger.userToken('mallory');
    const { privateKey } = await generateKeyPair('ES256');
    const forged = await idp.forge(
      { sub: 'alice', aud: AUDIENCE, scope: 'itguard', itguard_principal: 'helpdesk-agent' },
      { key: privateKey },
    );
    const expired = await idp.userToken('alice');
    const cases: [string, string][] = [
      [otherAudience, `The access token is for another resource (its aud is not ${AUDIENCE}).`],
      [wrongIssuer, 'The access token was not issued by an issuer this server trusts.'],
      [forged, 'The access token signature does not verify.'],
      ['garbage', 'The access token is not a JWT this server can read.'],
    ];
    for (const [token, description] of cases) {
      const r = await post(url, token);
      expect(r.status, description).toBe(401);
      expect(r.headers.get('www-authenticate')).toBe(challenge(description));
      const body = (await r.json()) as { jsonrpc: string; id: null; error: { message: string; data: unknown } };
      expect(body).toMatchObject({ jsonrpc: '2.0', id: null, error: { code: -32000 } });
      expect(body.error.data).toEqual({ http_status: 401, error: 'invalid_token', error_description: description });
      expect(body.error.message).toBe(
        `Unauthorized: ${description} Create a token with \`itguard token create --principal NAME\`, or sign in again with the identity provider to get a new access token, and configure the MCP client to send it as Authorization: Bearer <token>.`,
      );
    }
    clock = decodeJwt(expired).exp! * 1000 + 61_000;
    const late = await post(url, expired);
    expect(late.status).toBe(401);
    expect(late.headers.get('www-authenticate')).toBe(challenge('The access token has expired.'));
  });

  it('missing scope: 403 insufficient_scope with the scope needed (step-up)', async () => {
    const { url } = await start();
    const token = await idp.userToken('alice', { scope: 'openid tickets' });
    const r = await post(url, token);
    expect(r.status).toBe(403);
    expect(r.headers.get('www-authenticate')).toBe(
      `Bearer resource_metadata="${PRM_URL}", error="insufficient_scope", error_description="The access token lacks the scope itguard.", scope="itguard"`,
    );
  });

  it('a token that maps to no principal: 403 naming the claim, no challenge', async () => {
    const { url } = await start();
    const r = await post(url, await idp.userToken('carol'));
    expect(r.status).toBe(403);
    expect(r.headers.get('www-authenticate')).toBeNull();
    const description =
      'The access token\'s "itguard_principal" claim (auth.principal_claim) names no principal of this server.';
    expect(await r.json()).toMatchObject({
      jsonrpc: '2.0',
      error: {
        message: `Forbidden: ${description} Ask IT to map your account to an itguard principal.`,
        data: { http_status: 403, error: 'access_denied', error_description: description },
      },
    });
  });

  it('an allowed issuer that cannot be reached: 503 with Retry-After (fail closed)', async () => {
    const { url } = await start();
    const token = await idp.forge({ iss: DEAD_ISSUER, sub: 'alice', aud: AUDIENCE, scope: 'itguard' });
    const r = await post(url, token);
    expect(r.status).toBe(503);
    expect(r.headers.get('retry-after')).toBe('30');
  });

  it('hands on what it proved, never the token: req.auth (for the SDK transports) and res.locals carry no token', async () => {
    const { app } = await start();
    const web = express();
    const verifier = createOAuthVerifier(app.policy.auth!, { isPrincipal: (n) => app.principal(n) !== undefined });
    web.post('/probe', bearerAuth(app, verifier), (req, res) => void res.json({ auth: req.auth, locals: authOf(res) }));
    const srv = web.listen(0, '127.0.0.1');
    await new Promise<void>((resolve) => srv.once('listening', () => resolve()));
    try {
      const token = await idp.userToken('alice');
      const r = await fetch(`http://127.0.0.1:${(srv.address() as AddressInfo).port}/probe`, {
        method: 'POST',
        headers: { authorization: `Bearer ${token}` },
      });
      const text = await r.text();
      expect(text).not.toContain(token.split('.')[2]!);
      expect(JSON.parse(text)).toMatchObject({
        auth: {
          token: '',
          clientId: 'mcp-client',
          extra: { principal: 'helpdesk-agent', onBehalfOf: 'alice@example.com', via: 'oauth' },
        },
        locals: {
          principal: { name: 'helpdesk-agent', onBehalfOf: 'alice@example.com' },
          user: `${idp.issuer} sub:alice`,
        },
      });
    } finally {
      await new Promise((resolve) => srv.close(resolve));
    }
  });

  it('never echoes or logs the token', async () => {
    const { url } = await start();
    const token = await idp.userToken('alice', { resource: 'https://other.test/api' });
    const r = await post(url, token);
    const body = await r.text();
    expect(body).not.toContain(token);
    expect(r.headers.get('www-authenticate')).not.toContain(token.slice(0, 20));
  });
});

describe('a valid token over a real MCP client', () => {
  it('maps to its principal; the tool call works and on_behalf_of is on every audit record of it', async () => {
    const { app, url } = await start();
    const { client, call } = await mcp(url, await idp.userToken('alice'));
    const names = (await client.listTools()).tools.map((t) => t.name);
    expect(names).toContain('ticket_create');
    const status = await call('guard_status');
    expect(status.structuredContent).toMatchObject({ principal: 'helpdesk-agent', on_behalf_of: 'alice@example.com' });
    const r = await call('ticket_create', {
      summary: 'Laptop fan is loud',
      requester: 'jdoe',
      reason: 'user asked in chat',
    });
    expect(r.isError).toBeFalsy();
    const records = app.sqlite.auditStore.byTrace(traceOf(r));
    expect(records.map((x) => x.event)).toEqual(['call.intent', 'call.outcome']);
    for (const rec of records)
      expect(rec).toMatchObject({ actor: 'helpdesk-agent', on_behalf_of: 'alice@example.com' });
    // A refusal is audited for the user too.
    const denied = await call('ticket_get', { key: 'NOPE-1' });
    expect(denied.isError).toBe(true);
    expect(app.sqlite.auditStore.byTrace(traceOf(denied)).every((x) => x.on_behalf_of === 'alice@example.com')).toBe(
      true,
    );
    expect(app.sqlite.auditStore.verify().ok).toBe(true);
    await client.close();
  });

  it('a client-credentials token works and acts for nobody', async () => {
    const { app, url } = await start();
    const { client, call } = await mcp(url, await idp.clientCredentials('ticket-bot'));
    const r = await call('kb_search', { query: 'vpn' });
    expect(r.isError).toBeFalsy();
    expect(app.sqlite.auditStore.byTrace(traceOf(r)).map((x) => x.on_behalf_of)).toEqual([null]);
    await client.close();
  });

  it('after the provider rotates its key, a token with the new kid is accepted', async () => {
    // The refetch cooldown (30 s by default) is covered in test/auth/oauth.test.ts; off here.
    const { url } = await start({ oauth: { jwksCooldownMs: 0 } });
    const first = await mcp(url, await idp.userToken('alice'));
    await first.client.close();
    const oldKid = idp.currentKid();
    await idp.rotate();
    const token = await idp.userToken('alice');
    expect(idp.currentKid()).not.toBe(oldKid);
    const { client, call } = await mcp(url, token);
    expect((await call('guard_status')).isError).toBeFalsy();
    await client.close();
  });

  it('an approval request records the user: request_status, the console, and the executor’s run', async () => {
    const { app, url } = await start();
    const { client, call } = await mcp(url, await idp.userToken('alice'));
    const r = await call('software_install', {
      user: 'jdoe',
      package: 'adobe-acrobat-pro',
      reason: 'needs to edit signed PDFs',
    });
    expect(codeOf(r)).toBe('APPROVAL_PENDING');
    const id = (r._meta!['itguard/error'] as { request_id: string }).request_id;
    const status = await call('request_status', { request_id: id });
    expect(status.structuredContent).toMatchObject({
      request_id: id,
      status: 'pending',
      on_behalf_of: 'alice@example.com',
    });
    expect(textOf(status)).toMatch(/on behalf of alice@example\.com/);

    // The approver console (signed in with an approver's static token) shows whose request it is.
    const approver = app.sqlite.tokens.create('it-approver', 'test').token;
    const login = await fetch(`${http!.url}/console/login`, {
      method: 'POST',
      redirect: 'manual',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ token: approver }),
    });
    const cookie = login.headers.getSetCookie()[0]!.split(';')[0]!;
    const page = await (await fetch(`${http!.url}/console`, { headers: { cookie } })).text();
    expect(page).toContain(`data-testid="pending-${id}"`);
    expect(page).toContain('<span data-testid="on-behalf-of">alice@example.com</span>');

    expect(
      (
        await decide(app, {
          id,
          approve: true,
          actor: { name: 'console:it-approver', via: 'console', principal: 'it-approver' },
        })
      ).ok,
    ).toBe(true);
    await expect.poll(() => app.sqlite.approvals.get(id)!.status, { timeout: 5000 }).toBe('succeeded');
    const run = [...app.sqlite.auditStore.iterate()].filter((x) => x.session_id === `executor:${id}`);
    expect(run.map((x) => x.event)).toEqual(
      expect.arrayContaining(['approval.consumed', 'call.intent', 'call.outcome']),
    );
    expect(run.every((x) => x.on_behalf_of === 'alice@example.com')).toBe(true);
    expect(app.sqlite.auditStore.verify().ok).toBe(true);
    await client.close();
  });
});

/** Signs in to the console with `token`; the session cookie, or the refusal's status. */
async function consoleLogin(token: string): Promise<{ status: number; cookie?: string }> {
  const r = await fetch(`${http!.url}/console/login`, {
    method: 'POST',
    redirect: 'manual',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({ token }),
  });
  const cookie = r.headers.getSetCookie()[0]?.split(';')[0];
  return { status: r.status, ...(r.status === 303 && cookie ? { cookie } : {}) };
}
async function consoleDecide(cookie: string, id: string, decision: 'approve' | 'deny') {
  const page = await (await fetch(`${http!.url}/console`, { headers: { cookie } })).text();
  const csrf = /name="csrf" value="([^"]+)"/.exec(page)![1]!;
  await fetch(`${http!.url}/console/requests/${id}`, {
    method: 'POST',
    redirect: 'manual',
    headers: { cookie, 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({ csrf, decision }),
  });
  return (await fetch(`${http!.url}/console`, { headers: { cookie } })).text();
}

describe('the approver console with OAuth', () => {
  it('signs an approver in with an access token; nobody approves a request made on their own behalf', async () => {
    const { app, url } = await start();
    // The provider issued dana an agent token too (a second client of hers): her agent asks for an install.
    const agentToken = await idp.forge({
      sub: 'dana',
      email: 'dana@example.com',
      aud: AUDIENCE,
      scope: 'itguard',
      client_id: 'mcp-client',
      itguard_principal: 'helpdesk-agent',
    });
    const { client, call } = await mcp(url, agentToken);
    const r = await call('software_install', { user: 'jdoe', package: 'adobe-acrobat-pro', reason: 'dana needs it' });
    const id = (r._meta!['itguard/error'] as { request_id: string }).request_id;
    await client.close();

    const dana = await consoleLogin(await idp.userToken('dana'));
    expect(dana.status).toBe(303);
    const refused = await consoleDecide(dana.cookie!, id, 'approve');
    expect(refused).toContain('<span class="muted" data-testid="user">(dana@example.com)</span>');
    expect(refused).toContain(`${id}: You cannot approve a request an agent made on your behalf.`);
    expect(app.sqlite.approvals.get(id)!.status).toBe('pending');

    const irene = await consoleLogin(await idp.userToken('irene'));
    await consoleDecide(irene.cookie!, id, 'approve');
    expect(app.sqlite.approvals.get(id)!.decided_by).toBe('console:it-approver');
    const decided = [...app.sqlite.auditStore.iterate()].filter((x) => x.event === 'approval.approved');
    expect(decided.map((x) => x.on_behalf_of)).toEqual(['irene@example.com']);
    expect(
      [...app.sqlite.auditStore.iterate()].filter((x) => x.event === 'console.login').map((x) => x.on_behalf_of),
    ).toEqual(['dana@example.com', 'irene@example.com']);
  });

  it('compares people by issuer + sub: the same person never approves their own request, whatever their token carries', async () => {
    const { app, url } = await start();
    const agentToken = await idp.forge({
      sub: 'dana',
      email: 'dana@example.com',
      aud: AUDIENCE,
      scope: 'itguard',
      client_id: 'mcp-client',
      itguard_principal: 'helpdesk-agent',
    });
    const { client, call } = await mcp(url, agentToken);
    const r = await call('software_install', { user: 'jdoe', package: 'adobe-acrobat-pro', reason: 'dana needs it' });
    const id = (r._meta!['itguard/error'] as { request_id: string }).request_id;
    await client.close();
    expect(app.sqlite.approvals.get(id)!.on_behalf_of_id).toBe(`${idp.issuer} sub:dana`);

    const approverClaims = { aud: AUDIENCE, scope: 'itguard', itguard_principal: 'it-approver' };
    const variants = [
      { sub: 'dana' }, // no email claim: displayed as "dana"
      { sub: 'dana', email: 'dana@example.com', email_verified: false },
      { sub: 'dana', email: 'Dana@Example.com' },
      { sub: 'dana-2nd-account', email: 'DANA@example.COM' }, // another subject, the same address in other case
    ];
    for (const v of variants) {
      const signedIn = await consoleLogin(await idp.forge({ ...approverClaims, ...v }));
      expect(signedIn.status).toBe(303);
      const page = await consoleDecide(signedIn.cookie!, id, 'approve');
      expect(page).toContain(`${id}: You cannot approve a request an agent made on your behalf.`);
      expect(app.sqlite.approvals.get(id)!.status).toBe('pending');
    }
    // Every refusal is in the audit, with who tried and why.
    const refusals = [...app.sqlite.auditStore.iterate()].filter((x) => x.event === 'approval.refused');
    expect(refusals).toHaveLength(variants.length);
    expect(refusals.every((x) => x.code === 'own_behalf' && x.actor === 'console:it-approver')).toBe(true);
    expect(JSON.parse(refusals[0]!.detail!)).toMatchObject({ request_id: id, decision: 'approve', via: 'console' });
    expect(app.sqlite.auditStore.verify().ok).toBe(true);

    // Someone else approves it; the request then runs.
    const irene = await consoleLogin(await idp.userToken('irene'));
    await consoleDecide(irene.cookie!, id, 'approve');
    expect(app.sqlite.approvals.get(id)!.status).not.toBe('pending');
  });

  it('refuses a machine token, a token for a principal without approvals:decide, a bad token, and static tokens when they are off', async () => {
    await start({
      auth: { issuers: [idp.issuer], audience: AUDIENCE, principal_claim: 'itguard_principal', static_tokens: false },
    });
    expect((await consoleLogin(await idp.clientCredentials('approver-bot'))).status).toBe(401);
    expect((await consoleLogin(await idp.userToken('alice'))).status).toBe(401);
    expect((await consoleLogin(await idp.userToken('irene', { resource: 'https://other.test/api' }))).status).toBe(401);
    expect((await consoleLogin(app!.sqlite.tokens.create('it-approver', 'test').token)).status).toBe(401);
    expect((await consoleLogin(await idp.userToken('irene'))).status).toBe(303);
  });
});

describe('sessions', () => {
  it('stay bound to the principal and the user that opened them; the same user’s next token keeps the session', async () => {
    const { app, url } = await start();
    const alice = await idp.userToken('alice');
    const opened = await post(url, alice);
    expect(opened.status).toBe(200);
    const sid = opened.headers.get('mcp-session-id')!;
    const list = { jsonrpc: '2.0', id: 2, method: 'tools/list', params: {} };
    const bob = await idp.userToken('bob'); // same principal, another person
    const asBob = await post(url, bob, sid, list);
    expect(asBob.status).toBe(403);
    expect(await asBob.json()).toMatchObject({ error: { message: 'Session belongs to another user' } });
    const staticToken = app.sqlite.tokens.create('helpdesk-agent', 'test').token;
    expect((await post(url, staticToken, sid, list)).status).toBe(403);
    const refreshed = await idp.userToken('alice');
    expect(refreshed).not.toBe(alice);
    expect((await post(url, refreshed, sid, list)).status).toBe(200);
  });
});

describe('static bearer tokens', () => {
  it('keep working beside OAuth', async () => {
    const { app, url } = await start();
    const { client, call } = await mcp(url, app.sqlite.tokens.create('helpdesk-agent', 'test').token);
    const r = await call('kb_search', { query: 'vpn' });
    expect(r.isError).toBeFalsy();
    expect(app.sqlite.auditStore.byTrace(traceOf(r))[0]!.on_behalf_of).toBeNull();
    await client.close();
  });

  it('are refused when the policy says static_tokens: false; OAuth still works', async () => {
    const { app, url } = await start({
      auth: { issuers: [idp.issuer], audience: AUDIENCE, principal_claim: 'itguard_principal', static_tokens: false },
    });
    const r = await post(url, app.sqlite.tokens.create('helpdesk-agent', 'test').token);
    expect(r.status).toBe(401);
    expect(r.headers.get('www-authenticate')).toMatch(
      /error="invalid_token", error_description="Static itguard tokens are turned off here/,
    );
    expect((await post(url, await idp.userToken('alice'))).status).toBe(200);
  });
});
