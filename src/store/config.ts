/**
 * Which store a policy names (DESIGN §5): `store: { kind: sqlite, path }` (the default) or
 * `store: { kind: postgres, url_env: ITGUARD_PG_URL }`. Read in one place, so the CLI's `store` verbs and
 * `policy check --probe` agree with the server on where the state lives.
 */
import type { Policy } from '../policy/schema.js';
import { DEFAULT_URL_ENV } from './postgres/connect.js';

export type StoreConfig = Policy['store'];

export const storeConfigOf = (policy: Pick<Policy, 'store'>): StoreConfig => policy.store;

/** The policy's PostgreSQL store, or (a SQLite policy: the store a deployment moves to) ITGUARD_PG_URL's. */
export function postgresConfigOf(policy: Pick<Policy, 'store'>): { kind: 'postgres'; urlEnv: string } {
  const c = storeConfigOf(policy);
  return c.kind === 'postgres' ? c : { kind: 'postgres', urlEnv: DEFAULT_URL_ENV };
}
