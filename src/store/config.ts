/**
 * Which store a policy names (DESIGN §5): `store: { kind: sqlite, path }` (the default) or
 * `store: { kind: postgres, url_env: ITGUARD_PG_URL }`. Read in one place, so the CLI's `store` verbs and
 * `policy check --probe` agree with the server on where the state lives.
 *
 * Until the policy schema types the `store:` key, this reads it untyped and accepts either spelling of the URL
 * variable's key (`url_env` as written in YAML, `urlEnv` once the schema maps it); anything else is the default.
 */
import { DEFAULT_URL_ENV } from './postgres/connect.js';

export type StoreConfig = { kind: 'sqlite'; path: string | undefined } | { kind: 'postgres'; urlEnv: string };

export function storeConfigOf(policy: unknown): StoreConfig {
  const s = (policy as { store?: Record<string, unknown> } | null | undefined)?.store;
  if (s?.kind === 'postgres') {
    const urlEnv = s.urlEnv ?? s.url_env;
    return { kind: 'postgres', urlEnv: typeof urlEnv === 'string' && urlEnv ? urlEnv : DEFAULT_URL_ENV };
  }
  return { kind: 'sqlite', path: typeof s?.path === 'string' && s.path ? s.path : undefined };
}

/** The policy's PostgreSQL store, or (a SQLite policy: the store a deployment moves to) ITGUARD_PG_URL's. */
export function postgresConfigOf(policy: unknown): { kind: 'postgres'; urlEnv: string } {
  const c = storeConfigOf(policy);
  return c.kind === 'postgres' ? c : { kind: 'postgres', urlEnv: DEFAULT_URL_ENV };
}
