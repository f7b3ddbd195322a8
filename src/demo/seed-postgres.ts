/**
 * The demo data on the PostgreSQL store (issue 20), from the same files as the embedded seed (seed.ts): the KB
 * shipped in kb/, the demo directory (users, groups, recovery channels), a TOTP factor for every demo user, the
 * devices and the software catalog. Runs once per database, like seedDemo: several replicas starting on a new
 * database seed it once (an advisory lock, and the `demo_seeded` meta row written in the same transaction).
 */
import { existsSync } from 'node:fs';
import { Secret } from 'otpauth';
import { BackendError } from '../core/backend.js';
import { type PgStore, PgStoreError, toPgStoreError } from '../store/postgres/connect.js';
import { PostgresDirectory } from '../tools/directory/postgres.js';
import { readArticles } from '../tools/kb/import.js';
import { PostgresKb } from '../tools/kb/postgres.js';
import { PostgresDeploy } from '../tools/software/postgres.js';
import { demoDevices, demoPackages, demoUsers } from './data.js';
import { BUNDLED_KB_DIR } from './seed.js';

/** Advisory lock key of the demo seed (the migration lock's key + 2: 'itguard' in ASCII, then 2). */
const SEED_LOCK_KEY = '7598801409335960578';

/** Adds (or refreshes) the KB articles of `kbDir` (default: kb/ shipped with itguard). */
export async function seedPostgresKb(
  kb: PostgresKb,
  kbDir = BUNDLED_KB_DIR,
): Promise<{ added: number; updated: number }> {
  return kb.upsert(existsSync(kbDir) ? readArticles(kbDir) : []);
}

export async function isPostgresSeeded(store: PgStore): Promise<boolean> {
  try {
    const [r] = await store.sql`SELECT 1 FROM meta WHERE key = 'demo_seeded'`;
    return r !== undefined;
  } catch (e) {
    throw toPgStoreError(store.target, e);
  }
}

/**
 * Seeds a migrated database with the whole demo; returns true when it seeded, false when it had been seeded before.
 * The KB goes first (its own transaction, an idempotent upsert), then everything else and the `demo_seeded` row in
 * one transaction: a seed cut short is finished by the next start. A failure is a PgStoreError.
 */
export async function seedPostgresDemo(
  store: PgStore,
  opts: { kbDir?: string; now?: () => number } = {},
): Promise<boolean> {
  if (await isPostgresSeeded(store)) return false;
  await seedPostgresKb(new PostgresKb(store), opts.kbDir ?? BUNDLED_KB_DIR);
  const now = opts.now ?? Date.now;
  try {
    return await store.sql.begin(async (tx) => {
      await tx.unsafe(`SET LOCAL statement_timeout = 120000`);
      await tx.unsafe(`SELECT pg_advisory_xact_lock(${SEED_LOCK_KEY})`);
      const [seeded] = await tx`SELECT 1 FROM meta WHERE key = 'demo_seeded'`;
      if (seeded) return false;
      await new PostgresDirectory(store).insert(
        demoUsers.map((u) => ({ ...u, groups: [...u.groups], disabled: u.disabled ?? false })),
        tx,
      );
      await new PostgresDeploy(store).seed(
        demoPackages.map((p) => ({ ...p, versions: [...p.versions], platforms: [...p.platforms] })),
        demoDevices,
        tx,
      );
      // Every demo user gets a TOTP factor, as on SQLite (MfaStore.enroll: a 20-byte secret, counters reset).
      const at = now();
      const factors = demoUsers.map((u) => ({
        username: u.username,
        secret: new Secret({ size: 20 }).base32,
        enrolled_at: at,
      }));
      await tx`INSERT INTO mfa_factors ${tx(factors)} ON CONFLICT (username) DO NOTHING`;
      await tx`INSERT INTO meta (key, value) VALUES ('demo_seeded', ${new Date(at).toISOString()})`;
      return true;
    });
  } catch (e) {
    // The adapters' inserts report a store failure as a BackendError carrying the PgStoreError: give that one.
    throw toPgStoreError(store.target, e instanceof BackendError && e.cause instanceof PgStoreError ? e.cause : e);
  }
}
