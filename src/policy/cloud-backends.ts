/**
 * The policy keys of the cloud adapters (DESIGN §8): `directory: { kind: okta }`, `factors: { kind: okta }`,
 * `deploy: { kind: intune }` and `kb: { kind: confluence }`, their validation, and their typed camelCase form.
 * Secrets are named by environment variable, never written here. URLs are https (http only to loopback hosts).
 */
import { z } from 'zod';
import { isLoopbackHost } from '../loopback.js';

const envName = z
  .string()
  .regex(/^[A-Z_][A-Z0-9_]{0,127}$/, { error: 'expected an environment variable name like OKTA_API_TOKEN' });

const cloudUrl = (example: string) =>
  z.string().refine(
    (s) => {
      try {
        const u = new URL(s);
        const okProto = u.protocol === 'https:' || (u.protocol === 'http:' && isLoopbackHost(u.hostname));
        return okProto && !u.username && !u.password && !u.search && !u.hash;
      } catch {
        return false;
      }
    },
    { error: `expected ${example} (http:// only for loopback hosts; no credentials, query or fragment)` },
  );

const timeoutMs = z.int().min(1000).max(120_000).optional();
const guid = z.string().regex(/^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$/, {
  error: 'expected a GUID like 00000000-0000-0000-0000-000000000000',
});
const catalogId = z.string().regex(/^[a-z0-9][a-z0-9-]{0,63}$/, { error: 'expected a catalog id like slack' });

export const oktaDirectorySchema = z.strictObject({
  kind: z.literal('okta'),
  org_url: cloudUrl('https://example.okta.com'),
  token_env: envName,
  timeout_ms: timeoutMs,
});

export const factorsSchema = z
  .discriminatedUnion('kind', [
    z.strictObject({ kind: z.literal('embedded') }),
    z.strictObject({
      kind: z.literal('okta'),
      // Default: the directory's org_url and token_env when the directory is Okta too.
      org_url: cloudUrl('https://example.okta.com').optional(),
      token_env: envName.optional(),
      timeout_ms: timeoutMs,
    }),
  ])
  .prefault({ kind: 'embedded' });

export const deploySchema = z
  .discriminatedUnion('kind', [
    z.strictObject({ kind: z.literal('embedded') }),
    z.strictObject({
      kind: z.literal('intune'),
      tenant_id: guid,
      client_id: guid,
      client_secret_env: envName,
      apps: z
        .record(catalogId, z.strictObject({ app_id: guid, group_id: guid }))
        .refine((r) => Object.keys(r).length > 0, { error: 'map at least one catalog id to an Intune app' }),
      assign: z.enum(['device', 'user']).default('device'),
      graph_url: cloudUrl('https://graph.microsoft.com').default('https://graph.microsoft.com'),
      login_url: cloudUrl('https://login.microsoftonline.com').default('https://login.microsoftonline.com'),
      /** After this long without a final state, the job is reported timed out. */
      install_timeout_hours: z
        .number()
        .min(1)
        .max(24 * 30)
        .default(72),
      timeout_ms: timeoutMs,
    }),
  ])
  .prefault({ kind: 'embedded' });

export const kbSchema = z
  .discriminatedUnion('kind', [
    z.strictObject({ kind: z.literal('embedded') }),
    z.strictObject({
      kind: z.literal('confluence'),
      base_url: cloudUrl('https://example.atlassian.net/wiki'),
      email_env: envName,
      token_env: envName,
      spaces: z
        .array(z.string().regex(/^~?[A-Za-z0-9]{1,255}$/, { error: 'expected a space key like IT' }))
        .min(1)
        .max(100),
      timeout_ms: timeoutMs,
    }),
  ])
  .prefault({ kind: 'embedded' });

export type OktaDirectoryPolicy = { kind: 'okta'; orgUrl: string; tokenEnv: string; timeoutMs: number | undefined };
export type FactorsPolicy =
  { kind: 'embedded' } | { kind: 'okta'; orgUrl: string; tokenEnv: string; timeoutMs: number | undefined };
export type DeployPolicy =
  | { kind: 'embedded' }
  | {
      kind: 'intune';
      tenantId: string;
      clientId: string;
      clientSecretEnv: string;
      apps: Readonly<Record<string, { appId: string; groupId: string }>>;
      assign: 'device' | 'user';
      graphUrl: string;
      loginUrl: string;
      installTimeoutMs: number;
      timeoutMs: number | undefined;
    };
export type KbPolicy =
  | { kind: 'embedded' }
  | {
      kind: 'confluence';
      baseUrl: string;
      emailEnv: string;
      tokenEnv: string;
      spaces: readonly string[];
      timeoutMs: number | undefined;
    };

export const toOktaDirectory = (d: z.output<typeof oktaDirectorySchema>): OktaDirectoryPolicy => ({
  kind: 'okta',
  orgUrl: d.org_url,
  tokenEnv: d.token_env,
  timeoutMs: d.timeout_ms,
});

/** Factors okta without its own org_url/token_env takes the Okta directory's (validated in `cloudIssues`). */
export function toFactors(
  f: z.output<typeof factorsSchema>,
  dir: { kind: string; orgUrl?: string; tokenEnv?: string; timeoutMs?: number | undefined },
) {
  if (f.kind === 'embedded') return { kind: 'embedded' } as const;
  return {
    kind: 'okta',
    orgUrl: f.org_url ?? dir.orgUrl ?? '',
    tokenEnv: f.token_env ?? dir.tokenEnv ?? '',
    timeoutMs: f.timeout_ms ?? dir.timeoutMs,
  } satisfies FactorsPolicy;
}

export function toDeploy(d: z.output<typeof deploySchema>): DeployPolicy {
  if (d.kind === 'embedded') return { kind: 'embedded' };
  return {
    kind: 'intune',
    tenantId: d.tenant_id,
    clientId: d.client_id,
    clientSecretEnv: d.client_secret_env,
    apps: Object.fromEntries(Object.entries(d.apps).map(([k, v]) => [k, { appId: v.app_id, groupId: v.group_id }])),
    assign: d.assign,
    graphUrl: d.graph_url,
    loginUrl: d.login_url,
    installTimeoutMs: d.install_timeout_hours * 3600_000,
    timeoutMs: d.timeout_ms,
  };
}

export function toKb(k: z.output<typeof kbSchema>): KbPolicy {
  if (k.kind === 'embedded') return { kind: 'embedded' };
  return {
    kind: 'confluence',
    baseUrl: k.base_url,
    emailEnv: k.email_env,
    tokenEnv: k.token_env,
    spaces: k.spaces,
    timeoutMs: k.timeout_ms,
  };
}

/** Cross-key rules: factors okta needs an Okta org, its own or the directory's. */
export function cloudIssues(b: {
  directory: { kind: string };
  factors: z.output<typeof factorsSchema>;
}): { path: (string | number)[]; message: string }[] {
  const f = b.factors;
  if (f.kind === 'okta' && b.directory.kind !== 'okta' && (!f.org_url || !f.token_env))
    return [
      {
        path: ['backends', 'factors', f.org_url ? 'token_env' : 'org_url'],
        message: 'required unless backends.directory is okta (then its org_url and token_env are used)',
      },
    ];
  return [];
}
