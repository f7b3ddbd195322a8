/**
 * The store's part of `policy check --probe` (DESIGN §7): where the state lives, whether it can be reached, the
 * server's version and the schema's version against this build's latest, changing nothing (no migration, no file
 * created). A store that cannot serve this itguard (unreachable, too old a server, a newer or edited schema, missing
 * privileges, a file that is not itguard's) is `ok: false`.
 */
import { existsSync } from 'node:fs';
import type { StoreConfig } from './config.js';
import { connectPg, type PgStore } from './postgres/connect.js';
import { checksum, pgMigrations } from './postgres/migrations.js';
import { COPIED_TABLES } from './postgres/copy.js';
import { connect as connectSqlite } from './sqlite/db.js';
import { migrations as sqliteMigrations } from './sqlite/migrations.js';

export interface StoreProbe {
  kind: 'sqlite' | 'postgres';
  /** The file, or the server's URL without its password. */
  target: string;
  ok: boolean;
  reachable: boolean;
  /** PostgreSQL's major version (postgres only). */
  serverVersion?: number;
  /** The schema version the store is at (0: new). */
  schemaVersion?: number;
  /** The schema version this build migrates to. */
  latestVersion: number;
  detail: string;
}

export const LATEST_PG_VERSION = Math.max(...pgMigrations.map((m) => m.version));

/** Probes the policy's store; `sqliteFile` is the file a SQLite store is in (the CLI resolves --db and `store.path`). */
export async function probeStore(cfg: StoreConfig, sqliteFile: string): Promise<StoreProbe> {
  return cfg.kind === 'postgres' ? probePg(cfg.urlEnv) : probeSqlite(sqliteFile);
}

async function probePg(urlEnv: string): Promise<StoreProbe> {
  const base = { kind: 'postgres' as const, latestVersion: LATEST_PG_VERSION };
  let pg: PgStore;
  try {
    pg = await connectPg({ kind: 'postgres', url_env: urlEnv }, { max: 1, connectTimeoutS: 5 });
  } catch (e) {
    const target = (e as { target?: unknown }).target;
    return {
      ...base,
      target: typeof target === 'string' ? target : `$${urlEnv}`,
      ok: false,
      reachable: false,
      detail: (e as Error).message,
    };
  }
  const at = { ...base, target: pg.target, reachable: true, serverVersion: pg.serverVersion };
  try {
    const [t] = await pg.sql<{ r: string | null }[]>`SELECT to_regclass('schema_migrations')::TEXT AS r`;
    const rows = t?.r
      ? await pg.sql<
          { version: number; checksum: string }[]
        >`SELECT version, checksum FROM schema_migrations ORDER BY version`
      : [];
    const schemaVersion = Math.max(0, ...rows.map((r) => r.version));
    const known = new Map(pgMigrations.map((m) => [m.version, m]));
    const unknown = rows.filter((r) => !known.has(r.version)).map((r) => r.version);
    const edited = rows.filter((r) => known.has(r.version) && checksum(known.get(r.version)!) !== r.checksum);
    const server = `PostgreSQL ${pg.serverVersion}, schema ${schemaVersion} of ${LATEST_PG_VERSION}`;
    if (unknown.length)
      return {
        ...at,
        schemaVersion,
        ok: false,
        detail: `${server}: migration ${unknown.join(', ')} is from a newer itguard`,
      };
    if (edited.length)
      return {
        ...at,
        schemaVersion,
        ok: false,
        detail: `${server}: migration ${edited.map((r) => r.version).join(', ')} was applied with a different text`,
      };
    if (schemaVersion < LATEST_PG_VERSION)
      return {
        ...at,
        schemaVersion,
        ok: true,
        detail: `${server}: ${LATEST_PG_VERSION - schemaVersion} migration(s) to apply (itguard store migrate)`,
      };
    const missing = await missingPrivileges(pg);
    if (missing.length)
      return { ...at, schemaVersion, ok: false, detail: `${server}: the login lacks ${missing.join(', ')}` };
    return { ...at, schemaVersion, ok: true, detail: `${server}: up to date` };
  } catch (e) {
    return { ...at, ok: false, detail: (e as Error).message };
  } finally {
    await pg.close().catch(() => {});
  }
}

/** What the login cannot do on the tables a replica writes: SELECT and INSERT everywhere, UPDATE except on the audit. */
async function missingPrivileges(pg: PgStore): Promise<string[]> {
  const rows = await pg.sql<{ t: string; sel: boolean; ins: boolean; upd: boolean }[]>`
    SELECT t, has_table_privilege(t, 'SELECT') AS sel, has_table_privilege(t, 'INSERT') AS ins,
           has_table_privilege(t, 'UPDATE') AS upd
      FROM unnest(${[...COPIED_TABLES, 'audit_head']}::TEXT[]) AS t`;
  const missing: string[] = [];
  for (const r of rows) {
    const lacks = [
      !r.sel && 'SELECT',
      !r.ins && r.t !== 'audit_head' && 'INSERT',
      !r.upd && r.t !== 'audit' && 'UPDATE',
    ];
    const what = lacks.filter(Boolean);
    if (what.length) missing.push(`${what.join('/')} on ${r.t}`);
  }
  return missing;
}

function probeSqlite(file: string): StoreProbe {
  const base = { kind: 'sqlite' as const, target: file, latestVersion: sqliteMigrations.length };
  if (file !== ':memory:' && !existsSync(file))
    return { ...base, ok: true, reachable: true, schemaVersion: 0, detail: 'no file yet: created at the first start' };
  try {
    const db = connectSqlite(file);
    try {
      const v = db.pragma('user_version', { simple: true }) as number;
      const meta = db.prepare("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'meta'").get();
      const at = `schema ${v} of ${sqliteMigrations.length}`;
      if (!meta && v !== 0)
        return { ...base, ok: false, reachable: true, schemaVersion: v, detail: `${at}: not an itguard database` };
      if (v > sqliteMigrations.length)
        return { ...base, ok: false, reachable: true, schemaVersion: v, detail: `${at}: written by a newer itguard` };
      const todo = sqliteMigrations.length - v;
      return {
        ...base,
        ok: true,
        reachable: true,
        schemaVersion: v,
        detail: todo ? `${at}: ${todo} migration(s) applied at the next start` : `${at}: up to date`,
      };
    } finally {
      db.close();
    }
  } catch (e) {
    return { ...base, ok: false, reachable: false, detail: (e as Error).message };
  }
}
