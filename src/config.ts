/**
 * The environment, read once: every ITGUARD_* variable is validated here and the result frozen, so no module
 * reads process.env on its own and a bad value stops the process at start with the variable and the rule.
 * Flags given on the command line take precedence where both exist (the CLI decides that).
 */
import { hostname } from 'node:os';
import { z } from 'zod';
import { formatIssues } from './issues.js';

const optional = (s: z.ZodType) => z.preprocess((v) => (v === '' ? undefined : v), s.optional());
const port = z.coerce
  .number({ error: 'expected a port number' })
  .int({ error: 'expected a port number' })
  .min(0, { error: 'expected a port 0..65535' })
  .max(65535, { error: 'expected a port 0..65535' });
const list = z.string().transform((v) =>
  v
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean),
);

/** What a replica id may be: one DNS label's characters in lower case, so `<id>.` + random is a plain header value. */
export const REPLICA_ID = /^[a-z0-9-]{1,63}$/;

/**
 * A host name as a replica id: lower case, every run of other characters (dots, underscores) one "-", no "-" at
 * either end, at most 63 characters; `itguard` when nothing is left.
 */
export function replicaIdOf(host: string): string {
  const id = host
    .toLowerCase()
    .replace(/[^a-z0-9-]+/g, '-')
    .slice(0, 63)
    .replace(/^-+|-+$/g, '');
  return id || 'itguard';
}

const envSchema = z.object({
  ITGUARD_POLICY: optional(z.string()),
  ITGUARD_DB: optional(z.string()),
  ITGUARD_HOST: optional(z.string()),
  ITGUARD_PORT: optional(port),
  ITGUARD_LOG_LEVEL: optional(
    z.enum(['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent'], {
      error: 'expected one of trace, debug, info, warn, error, fatal, silent',
    }),
  ),
  ITGUARD_AUDIT_KEY: optional(z.string().min(16, { error: 'expected a secret of at least 16 characters' })),
  ITGUARD_PUBLIC_URL: optional(
    z.url({ protocol: /^https?$/, error: 'expected an http(s) URL' }).transform((u) => u.replace(/\/$/, '')),
  ),
  ITGUARD_VERIFY_PORT: optional(port),
  /** The HMAC key of MRTR requestState, shared by every process and replica: 64+ hex characters or base64 of 32+ bytes. */
  ITGUARD_STATE_KEY: optional(
    z.string().transform((v, ctx) => {
      const bytes = /^[0-9a-fA-F]+$/.test(v) && v.length % 2 === 0 ? Buffer.from(v, 'hex') : Buffer.from(v, 'base64');
      if (bytes.length < 32) {
        ctx.addIssue({ code: 'custom', message: 'expected at least 32 bytes: 64+ hex characters or base64' });
        return z.NEVER;
      }
      return new Uint8Array(bytes);
    }),
  ),
  /**
   * This replica's name (DESIGN §6 Replicas): the prefix of its 2025-11-25 session ids, which the load balancer routes
   * by, and its `application_name` on PostgreSQL. Default: the host name, sanitised (replicaIdOf).
   */
  ITGUARD_REPLICA_ID: optional(
    z.string().regex(REPLICA_ID, {
      error: 'expected 1-63 characters a-z, 0-9 and "-" (it begins every session id, and the balancer matches it)',
    }),
  ),
  ITGUARD_ALLOWED_HOSTS: optional(list),
  ITGUARD_ALLOWED_ORIGINS: optional(list),
  /** Crash tests only: stall a write at this point so a test can kill -9 the process there. */
  ITGUARD_FAILPOINT: optional(
    z.enum(['before-effect', 'after-effect'], { error: 'expected before-effect or after-effect' }),
  ),
});

export interface Config {
  policyFile: string | undefined;
  dbFile: string | undefined;
  host: string | undefined;
  port: number | undefined;
  logLevel: string | undefined;
  auditKey: string | undefined;
  publicUrl: string | undefined;
  verifyPort: number | undefined;
  stateKey: Uint8Array | undefined;
  /** ITGUARD_REPLICA_ID, else the host name sanitised (replicaIdOf): always set. */
  replicaId: string;
  allowedHosts: readonly string[];
  allowedOrigins: readonly string[];
  failpoint: 'before-effect' | 'after-effect' | undefined;
}

export class ConfigError extends Error {
  override readonly name = 'ConfigError';
}

export function parseConfig(env: NodeJS.ProcessEnv, host: () => string = hostname): Config {
  const parsed = envSchema.safeParse(env);
  if (!parsed.success) throw new ConfigError(`invalid environment: ${formatIssues(parsed.error.issues).join('; ')}`);
  const e = parsed.data as z.output<typeof envSchema> & Record<string, unknown>;
  return Object.freeze({
    policyFile: e.ITGUARD_POLICY as string | undefined,
    dbFile: e.ITGUARD_DB as string | undefined,
    host: e.ITGUARD_HOST as string | undefined,
    port: e.ITGUARD_PORT as number | undefined,
    logLevel: e.ITGUARD_LOG_LEVEL as string | undefined,
    auditKey: e.ITGUARD_AUDIT_KEY as string | undefined,
    publicUrl: e.ITGUARD_PUBLIC_URL as string | undefined,
    verifyPort: e.ITGUARD_VERIFY_PORT as number | undefined,
    stateKey: e.ITGUARD_STATE_KEY as Uint8Array | undefined,
    replicaId: (e.ITGUARD_REPLICA_ID as string | undefined) ?? replicaIdOf(host()),
    allowedHosts: Object.freeze((e.ITGUARD_ALLOWED_HOSTS as string[] | undefined) ?? []),
    allowedOrigins: Object.freeze((e.ITGUARD_ALLOWED_ORIGINS as string[] | undefined) ?? []),
    failpoint: e.ITGUARD_FAILPOINT as Config['failpoint'],
  });
}

let current: Config | undefined;
/** The process's configuration, parsed from process.env on first use and never again. */
export function config(): Config {
  current ??= parseConfig(process.env);
  return current;
}
