/**
 * The access-token verifier (src/auth/oauth.ts) against a real OpenID provider on loopback (test/helpers/idp.ts):
 * tokens from the authorization code flow and the client credentials grant, and hand-signed ones for the shapes
 * no honest flow makes.
 */
import { decodeJwt, generateKeyPair, SignJWT } from 'jose';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { createOAuthVerifier, isMachine, TokenRejected, type OAuthVerifier } from '../../src/auth/oauth.js';
import type { AuthPolicy } from '../../src/policy/auth.js';
import { startIdp, type TestIdp } from '../helpers/idp.js';

const AUDIENCE = 'https://itguard.test/mcp';
const PRINCIPALS = new Set(['helpdesk-agent', 'kb-reader', 'it-approver']);

let idp: TestIdp;
let other: TestIdp;
beforeAll(async () => {
  idp = await startIdp({
    resources: [AUDIENCE, 'https://other.test/api'],
    accounts: {
      alice: {
        email: 'alice@example.com',
        email_verified: true,
        groups: ['staff', 'it-agents'],
        itguard_principal: 'helpdesk-agent',
      },
      bob: {
        email: 'bob@example.com',
        email_verified: false,
        groups: ['it-approvers', 'it-agents'],
        itguard_principal: 'root',
      },
      carol: { groups: ['staff'] },
    },
    machines: { 'ticket-bot': { itguard_principal: 'kb-reader', groups: ['it-agents'] } },
  });
  other = await startIdp({ resources: [AUDIENCE], accounts: { mallory: { itguard_principal: 'helpdesk-agent' } } });
});
afterAll(async () => {
  await idp?.close();
  await other?.close();
});
afterEach(() => {
  vi.useRealTimers();
});

const policy = (over: Partial<AuthPolicy> = {}): AuthPolicy => ({
  issuers: [idp.issuer],
  audience: AUDIENCE,
  principalClaim: 'itguard_principal',
  principalsFromGroups: undefined,
  groupsClaim: 'groups',
  requiredScopes: [],
  staticTokens: true,
  ...over,
});
let clock: number | undefined;
const verifier = (over: Partial<AuthPolicy> = {}, opts: Partial<Parameters<typeof createOAuthVerifier>[1]> = {}) =>
  createOAuthVerifier(policy(over), { isPrincipal: (n) => PRINCIPALS.has(n), now: () => clock ?? Date.now(), ...opts });

async function refusal(v: OAuthVerifier, token: string): Promise<TokenRejected> {
  const e = await v.verify(token).then(
    () => undefined,
    (err: unknown) => err,
  );
  expect(e).toBeInstanceOf(TokenRejected);
  return e as TokenRejected;
}

describe('a valid access token', () => {
  it('from the authorization code flow maps to the principal its claim names, acting for the user’s e-mail', async () => {
    const token = await idp.userToken('alice');
    const id = await verifier().verify(token);
    expect(id).toEqual({
      principal: 'helpdesk-agent',
      onBehalfOf: 'alice@example.com',
      onBehalfOfId: `${idp.issuer} sub:alice`,
      user: `${idp.issuer} sub:alice`,
      issuer: idp.issuer,
      clientId: 'mcp-client',
      scopes: ['itguard', 'tickets'],
      expiresAt: decodeJwt(token).exp,
    });
  });

  it('from client credentials acts for nobody (sub is the client) and is bound to the client', async () => {
    const token = await idp.clientCredentials('ticket-bot');
    expect(decodeJwt(token)).toMatchObject({ sub: 'ticket-bot', client_id: 'ticket-bot' });
    const id = await verifier().verify(token);
    expect(id).toMatchObject({
      principal: 'kb-reader',
      onBehalfOf: undefined,
      user: `${idp.issuer} client:ticket-bot`,
    });
  });

  it('acts for sub when the e-mail is missing or the provider says it is not verified', async () => {
    const bob = await idp.userToken('bob');
    const byGroups = verifier({
      principalClaim: undefined,
      principalsFromGroups: [{ group: 'it-agents', principal: 'helpdesk-agent' }],
    });
    expect((await byGroups.verify(bob)).onBehalfOf).toBe('bob');
    const noEmail = await idp.forge({ sub: 'dave', aud: AUDIENCE, itguard_principal: 'kb-reader' });
    expect((await verifier().verify(noEmail)).onBehalfOf).toBe('dave');
  });

  it('knows machine tokens by the signals providers use', () => {
    expect(isMachine({ sub: 'abc', client_id: 'abc' })).toBe(true); // oidc-provider, Okta
    expect(isMachine({ sub: 'abc', azp: 'abc' })).toBe(true);
    expect(isMachine({ sub: 'x@clients', gty: 'client-credentials' })).toBe(true); // Auth0
    expect(isMachine({ sub: 'oid', idtyp: 'app', appid: 'other' })).toBe(true); // Entra
    expect(isMachine({ sub: 'u-1', azp: 'cli', preferred_username: 'service-account-cli' })).toBe(true); // Keycloak
    expect(isMachine({})).toBe(true);
    expect(isMachine({ sub: 'alice', client_id: 'mcp-client', azp: 'mcp-client' })).toBe(false);
  });
});

describe('claims to a principal', () => {
  it('principals_from_groups: the first mapping in policy order whose group the token carries', async () => {
    const alice = await idp.userToken('alice'); // groups [staff, it-agents]
    const bob = await idp.userToken('bob'); // groups [it-approvers, it-agents]
    const v = verifier({
      principalClaim: undefined,
      principalsFromGroups: [
        { group: 'it-agents', principal: 'helpdesk-agent' },
        { group: 'it-approvers', principal: 'it-approver' },
      ],
    });
    expect((await v.verify(alice)).principal).toBe('helpdesk-agent');
    // bob's token lists it-approvers first; the policy lists it-agents first, and the policy decides.
    expect((await v.verify(bob)).principal).toBe('helpdesk-agent');
  });

  it('a token that maps to no principal is refused with 403 naming the claim', async () => {
    const carol = await idp.userToken('carol'); // no itguard_principal; groups [staff]
    const byClaim = await refusal(verifier(), carol);
    expect([byClaim.status, byClaim.kind]).toEqual([403, 'no_principal']);
    expect(byClaim.message).toMatch(/no "itguard_principal" claim \(auth\.principal_claim\)/);
    const bob = await idp.userToken('bob'); // itguard_principal: root, not in the policy
    expect((await refusal(verifier(), bob)).message).toMatch(
      /"itguard_principal" claim \(auth\.principal_claim\) names no principal/,
    );
    const groups = verifier({
      principalClaim: undefined,
      principalsFromGroups: [{ group: 'it-agents', principal: 'helpdesk-agent' }],
    });
    expect((await refusal(groups, carol)).message).toMatch(/"groups" claim \(auth\.groups_claim\) has no group mapped/);
    const roles = verifier({
      principalClaim: undefined,
      groupsClaim: 'roles',
      principalsFromGroups: [{ group: 'it-agents', principal: 'helpdesk-agent' }],
    });
    expect((await refusal(roles, carol)).message).toMatch(/no "roles" claim \(auth\.groups_claim\)/);
  });
});

describe('refusals (401 invalid_token unless said otherwise)', () => {
  it('a token for another audience', async () => {
    const token = await idp.userToken('alice', { resource: 'https://other.test/api' });
    const e = await refusal(verifier(), token);
    expect([e.status, e.message]).toEqual([
      401,
      `The access token is for another resource (its aud is not ${AUDIENCE}).`,
    ]);
  });

  it('a token from an issuer not on the allowlist, without ever contacting that issuer', async () => {
    const token = await other.userToken('mallory');
    const before = other.requests.length;
    const e = await refusal(verifier(), token);
    expect(e.message).toBe('The access token was not issued by an issuer this server trusts.');
    expect(other.requests.slice(before)).toEqual([]);
  });

  it('expired: exp with 60 s of clock skew', async () => {
    const token = await idp.userToken('alice');
    const exp = decodeJwt(token).exp! * 1000;
    clock = exp + 59_000;
    try {
      expect((await verifier().verify(token)).principal).toBe('helpdesk-agent');
      clock = exp + 61_000;
      expect((await refusal(verifier(), token)).message).toBe('The access token has expired.');
    } finally {
      clock = undefined;
    }
  });

  it('not yet valid (nbf past the skew), no exp, or a JWT that is not an access token (typ)', async () => {
    const claims = { sub: 'alice', aud: AUDIENCE, itguard_principal: 'helpdesk-agent' };
    const now = Math.floor(Date.now() / 1000);
    expect((await verifier().verify(await idp.forge({ ...claims, nbf: now + 30 }))).principal).toBe('helpdesk-agent');
    expect((await refusal(verifier(), await idp.forge({ ...claims, nbf: now + 120 }))).message).toMatch(
      /not valid yet/,
    );
    expect((await refusal(verifier(), await idp.forge({ ...claims, exp: undefined }))).message).toMatch(/no expiry/);
    expect((await refusal(verifier(), await idp.forge(claims, { typ: 'JWT' }))).message).toMatch(
      /type "JWT", not an access token/,
    );
    expect((await verifier().verify(await idp.forge(claims, { typ: null }))).principal).toBe('helpdesk-agent');
    expect((await verifier().verify(await idp.forge(claims, { typ: 'application/at+jwt' }))).principal).toBe(
      'helpdesk-agent',
    );
  });

  it('a bad signature: another key under the provider’s kid, an unknown kid, a shared-secret algorithm, not a JWT', async () => {
    const claims = { sub: 'alice', aud: AUDIENCE, itguard_principal: 'helpdesk-agent' };
    const { privateKey } = await generateKeyPair('ES256');
    const v = verifier();
    expect((await refusal(v, await idp.forge(claims, { key: privateKey }))).message).toBe(
      'The access token signature does not verify.',
    );
    expect((await refusal(v, await idp.forge(claims, { key: privateKey, kid: 'made-up' }))).message).toBe(
      'The access token is signed with a key its issuer does not publish.',
    );
    const hs = await new SignJWT({ iss: idp.issuer, exp: Math.floor(Date.now() / 1000) + 60, ...claims })
      .setProtectedHeader({ alg: 'HS256', kid: idp.currentKid() })
      .sign(new TextEncoder().encode('a'.repeat(32)));
    expect((await refusal(v, hs)).message).toMatch(/algorithm this server does not accept/);
    expect((await refusal(v, 'not-a-jwt')).message).toBe('The access token is not a JWT this server can read.');
  });

  it('a valid token without auth.required_scopes: 403 insufficient_scope with the scopes needed', async () => {
    const token = await idp.userToken('alice', { scope: 'openid tickets' });
    const e = await refusal(verifier({ requiredScopes: ['itguard', 'tickets'] }), token);
    expect([e.status, e.kind, e.scope, e.message]).toEqual([
      403,
      'insufficient_scope',
      'itguard tickets',
      'The access token lacks the scope itguard.',
    ]);
    const scp = await idp.forge({
      sub: 'alice',
      aud: AUDIENCE,
      itguard_principal: 'helpdesk-agent',
      scp: ['itguard', 'tickets'],
    });
    expect((await verifier({ requiredScopes: ['itguard', 'tickets'] }).verify(scp)).scopes).toEqual([
      'itguard',
      'tickets',
    ]);
  });
});

describe('keys and discovery', () => {
  it('caches the key set; a rotated key is fetched once the refetch cooldown allows, and made-up kids cannot hammer the provider', async () => {
    vi.useFakeTimers({ toFake: ['Date'] });
    const v = verifier();
    const fetches = idp.jwksFetches();
    expect((await v.verify(await idp.userToken('alice'))).principal).toBe('helpdesk-agent');
    expect((await v.verify(await idp.userToken('alice'))).principal).toBe('helpdesk-agent');
    expect(idp.jwksFetches()).toBe(fetches + 1); // cached

    await idp.rotate();
    const rotated = await idp.userToken('alice');
    expect(await import('jose').then((j) => j.decodeProtectedHeader(rotated).kid)).toBe(idp.currentKid());
    // Within 30 s of the last fetch an unknown kid does not refetch: refused for now.
    expect((await refusal(v, rotated)).message).toMatch(/key its issuer does not publish/);
    expect(idp.jwksFetches()).toBe(fetches + 1);
    vi.setSystemTime(Date.now() + 31_000);
    expect((await v.verify(rotated)).principal).toBe('helpdesk-agent');
    expect(idp.jwksFetches()).toBe(fetches + 2);
    // Tokens signed before the rotation still verify: the old key stays published.
    expect(
      (await v.verify(await idp.forge({ sub: 'alice', aud: AUDIENCE, itguard_principal: 'helpdesk-agent' }))).principal,
    ).toBe('helpdesk-agent');
    // A flood of made-up key ids right after costs no fetch at all.
    const { privateKey } = await generateKeyPair('ES256');
    for (let i = 0; i < 5; i++)
      await refusal(v, await idp.forge({ sub: 'alice', aud: AUDIENCE }, { key: privateKey, kid: `junk-${i}` }));
    expect(idp.jwksFetches()).toBe(fetches + 2);
  });

  it('falls back to RFC 8414 metadata when OpenID discovery is absent', async () => {
    const seen: string[] = [];
    const v = verifier(
      {},
      {
        fetch: (input, init) => {
          const url = String(input);
          seen.push(new URL(url).pathname);
          if (url.endsWith('/.well-known/openid-configuration'))
            return Promise.resolve(new Response('no', { status: 404 }));
          // This provider publishes the same metadata under the RFC 8414 name.
          return fetch(
            url.replace('/.well-known/oauth-authorization-server', '/.well-known/openid-configuration'),
            init,
          );
        },
      },
    );
    expect((await v.verify(await idp.userToken('alice'))).principal).toBe('helpdesk-agent');
    expect(seen.slice(0, 2)).toEqual(['/.well-known/openid-configuration', '/.well-known/oauth-authorization-server']);
  });

  it('metadata naming another issuer, or a provider that cannot be reached, is 503 (fail closed), retried only after a pause', async () => {
    let calls = 0;
    const v = verifier(
      {},
      {
        fetch: () => {
          calls++;
          return Promise.resolve(
            Response.json({ issuer: 'https://evil.example', jwks_uri: 'https://evil.example/jwks' }),
          );
        },
      },
    );
    const token = await idp.userToken('alice');
    const e = await refusal(v, token);
    expect([e.status, e.kind]).toEqual([503, 'unavailable']);
    expect(calls).toBe(2); // both metadata locations, each naming the wrong issuer
    await refusal(v, token);
    expect(calls).toBe(2); // remembered: no new fetch within 30 s
    const down = verifier({}, { fetch: () => Promise.reject(new TypeError('fetch failed')) });
    expect((await refusal(down, token)).status).toBe(503);
  });
});
