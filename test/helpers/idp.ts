/**
 * A real OpenID provider for the OAuth tests: `oidc-provider` (certified) on a loopback port, issuing RFC 9068 JWT
 * access tokens for resource indicators (RFC 8707).
 *
 *  - user tokens go through the real authorization code flow with PKCE: /auth, the provider's development
 *    login and consent pages (any password), the redirect, and /token with `resource` (`userToken`);
 *  - machine tokens through the client credentials grant (`clientCredentials`);
 *  - `rotate()` makes the provider sign with a new key and publish it beside the old one, as a real IdP does;
 *  - `forge()` signs a token with the provider's own current key (or an attacker's), for the shapes no honest flow
 *    produces (typ JWT, nbf in the future, no exp);
 *  - `jwksFetches` counts requests for the key set, so the tests can see caching and the refetch cooldown.
 * Account claims (email, groups, itguard_principal) reach the access token through `extraTokenClaims`.
 */
import { createHash, randomBytes } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { exportJWK, generateKeyPair, SignJWT, type CryptoKey, type JWK } from 'jose';
import Provider, { errors as oidcErrors } from 'oidc-provider';

export interface Account {
  email?: string;
  email_verified?: boolean;
  groups?: string[];
  itguard_principal?: string;
}

export interface IdpOptions {
  /** The resource indicators it issues tokens for (each becomes the token's aud). */
  resources: string[];
  accounts?: Record<string, Account>;
  /** Extra claims of each client-credentials client's tokens, by client id. */
  machines?: Record<string, Record<string, unknown>>;
  scopes?: string;
}

export interface TestIdp {
  issuer: string;
  jwksFetches: () => number;
  /** Also counts discovery requests, by path. */
  requests: string[];
  userToken(login: string, o?: { scope?: string; resource?: string }): Promise<string>;
  clientCredentials(clientId: string, o?: { scope?: string; resource?: string }): Promise<string>;
  rotate(): Promise<void>;
  /** Signs `claims` with the provider's current key (or `key`), header kid of the current key unless given. */
  forge(claims: Record<string, unknown>, o?: { typ?: string | null; kid?: string; key?: CryptoKey }): Promise<string>;
  currentKid(): string;
  close(): Promise<void>;
}

export const REDIRECT_URI = 'http://127.0.0.1:9/callback';
const SECRET = 'test-client-secret-that-is-long-enough';

interface SigningKey {
  kid: string;
  privateJwk: JWK;
  privateKey: CryptoKey;
}

async function newKey(): Promise<SigningKey> {
  const { privateKey } = await generateKeyPair('ES256', { extractable: true });
  const kid = `k-${randomBytes(6).toString('hex')}`;
  const privateJwk = { ...(await exportJWK(privateKey)), kid, alg: 'ES256', use: 'sig' };
  return { kid, privateJwk, privateKey };
}

const b64url = (b: Buffer) => b.toString('base64url');

export async function startIdp(o: IdpOptions): Promise<TestIdp> {
  const accounts = o.accounts ?? {};
  const machines = o.machines ?? {};
  const scopes = o.scopes ?? 'itguard tickets';
  const http: Server = createServer();
  await new Promise<void>((resolve) => http.listen(0, '127.0.0.1', resolve));
  const issuer = `http://127.0.0.1:${(http.address() as AddressInfo).port}`;
  const requests: string[] = [];
  let keys: SigningKey[] = [await newKey()];

  const build = () => {
    // Its development-mode notices (in-memory adapter, dev interactions) are what this helper is for: not shown.
    const warn = console.warn;
    console.warn = (...a: unknown[]) => void (String(a[0]).includes('a quick start development-only') || warn(...a));
    try {
      return newProvider();
    } finally {
      console.warn = warn;
    }
  };
  const newProvider = () => {
    const provider = new Provider(issuer, {
      jwks: { keys: keys.map((k) => k.privateJwk) },
      clients: [
        {
          client_id: 'mcp-client',
          client_secret: SECRET,
          redirect_uris: [REDIRECT_URI],
          grant_types: ['authorization_code'],
          response_types: ['code'],
          token_endpoint_auth_method: 'client_secret_post',
        },
        ...Object.keys(machines).map((client_id) => ({
          client_id,
          client_secret: SECRET,
          redirect_uris: [],
          response_types: [],
          grant_types: ['client_credentials'],
          token_endpoint_auth_method: 'client_secret_post' as const,
        })),
      ],
      clientDefaults: { id_token_signed_response_alg: 'ES256' },
      cookies: { keys: ['test-cookie-key'] },
      ttl: {
        AccessToken: 3600,
        AuthorizationCode: 60,
        ClientCredentials: 3600,
        Grant: 3600,
        IdToken: 3600,
        Interaction: 600,
        Session: 3600,
      },
      pkce: { required: () => true },
      features: {
        devInteractions: { enabled: true },
        clientCredentials: { enabled: true },
        resourceIndicators: {
          enabled: true,
          defaultResource: () => o.resources[0]!,
          useGrantedResource: () => true,
          getResourceServerInfo: (_ctx, indicator) => {
            if (!o.resources.includes(indicator)) throw new oidcErrors.InvalidTarget();
            return {
              scope: scopes,
              audience: indicator,
              accessTokenTTL: 3600,
              accessTokenFormat: 'jwt',
              jwt: { sign: { alg: 'ES256' } },
            };
          },
        },
      },
      findAccount: (_ctx, sub) => ({ accountId: sub, claims: () => ({ sub, ...accounts[sub] }) }),
      extraTokenClaims: (_ctx, token) => {
        const t = token as { accountId?: string; clientId?: string; kind?: string };
        if (t.kind === 'ClientCredentials') return machines[t.clientId ?? ''];
        return t.accountId ? { ...accounts[t.accountId] } : undefined;
      },
    });
    return provider.callback();
  };
  let handler = build();
  http.on('request', (req, res) => {
    requests.push(new URL(req.url ?? '/', issuer).pathname);
    void handler(req, res);
  });

  const form = (v: Record<string, string>) => new URLSearchParams(v).toString();
  const tokenRequest = async (body: Record<string, string>): Promise<string> => {
    const res = await fetch(`${issuer}/token`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: form({ client_secret: SECRET, ...body }),
    });
    const json = (await res.json()) as { access_token?: string; error?: string; error_description?: string };
    if (!json.access_token) throw new Error(`token endpoint: ${json.error}: ${json.error_description}`);
    return json.access_token;
  };

  return {
    issuer,
    requests,
    jwksFetches: () => requests.filter((p) => p === '/jwks').length,

    async userToken(login, t = {}) {
      const resource = t.resource ?? o.resources[0]!;
      const verifier = b64url(randomBytes(32));
      const jar = new Map<string, string>();
      const send = async (url: URL, body?: Record<string, string>) => {
        const res = await fetch(url, {
          method: body ? 'POST' : 'GET',
          redirect: 'manual',
          headers: {
            cookie: [...jar].map(([k, v]) => `${k}=${v}`).join('; '),
            ...(body ? { 'content-type': 'application/x-www-form-urlencoded' } : {}),
          },
          ...(body ? { body: form(body) } : {}),
        });
        for (const c of res.headers.getSetCookie()) {
          const [pair] = c.split(';');
          const eq = pair!.indexOf('=');
          jar.set(pair!.slice(0, eq), pair!.slice(eq + 1));
        }
        return res;
      };
      const auth = new URL(`${issuer}/auth`);
      auth.search = form({
        client_id: 'mcp-client',
        response_type: 'code',
        redirect_uri: REDIRECT_URI,
        scope: t.scope ?? `openid ${scopes}`,
        resource,
        state: b64url(randomBytes(8)),
        code_challenge: b64url(createHash('sha256').update(verifier).digest()),
        code_challenge_method: 'S256',
      });
      let res = await send(auth);
      for (let step = 0; step < 10; step++) {
        const location = res.headers.get('location');
        if (!location) throw new Error(`authorization flow stopped at HTTP ${res.status}: ${await res.text()}`);
        if (location.startsWith(REDIRECT_URI)) {
          const code = new URL(location).searchParams.get('code');
          if (!code) throw new Error(`authorization failed: ${location}`);
          return tokenRequest({
            grant_type: 'authorization_code',
            client_id: 'mcp-client',
            code,
            redirect_uri: REDIRECT_URI,
            code_verifier: verifier,
            resource,
          });
        }
        const next = new URL(location, issuer);
        if (next.pathname.startsWith('/interaction/')) {
          const page = await (await send(next)).text();
          res = page.includes('value="login"')
            ? await send(next, { prompt: 'login', login, password: 'any' })
            : await send(next, { prompt: 'consent' });
        } else {
          res = await send(next);
        }
      }
      throw new Error('authorization flow did not finish');
    },

    clientCredentials(clientId, t = {}) {
      return tokenRequest({
        grant_type: 'client_credentials',
        client_id: clientId,
        scope: t.scope ?? scopes,
        resource: t.resource ?? o.resources[0]!,
      });
    },

    async rotate() {
      // The new key signs from now on; the old one stays published for tokens already issued.
      keys = [await newKey(), ...keys];
      handler = build();
    },

    async forge(claims, f = {}) {
      const key = keys[0]!;
      const now = Math.floor(Date.now() / 1000);
      return new SignJWT({ iss: issuer, iat: now, exp: now + 600, ...claims })
        .setProtectedHeader({
          alg: 'ES256',
          kid: f.kid ?? key.kid,
          ...(f.typ === null ? {} : { typ: f.typ ?? 'at+jwt' }),
        })
        .sign(f.key ?? key.privateKey);
    },

    currentKid: () => keys[0]!.kid,

    async close() {
      const closed = new Promise<void>((resolve) => http.close(() => resolve()));
      http.closeAllConnections();
      await closed;
    },
  };
}
