/**
 * The demo data on whichever store the process uses (`demo: true` in the policy): seed.ts on SQLite, seed-postgres.ts
 * on PostgreSQL. Once per database either way; resolves true when this call seeded it.
 */
import type { BackendStore } from '../backends/embedded.js';
import { seedDemo } from './seed.js';
import { seedPostgresDemo } from './seed-postgres.js';

export async function seed(
  store: BackendStore,
  o: { demo: boolean; kbDir?: string | undefined; now?: () => number },
): Promise<boolean> {
  if (!o.demo) return false;
  if (store.kind === 'sqlite') return seedDemo(store.db, o.kbDir);
  return seedPostgresDemo(store.pg, { ...(o.kbDir ? { kbDir: o.kbDir } : {}), ...(o.now ? { now: o.now } : {}) });
}
