/**
 * `itguard store migrate | copy` (DESIGN §5, §7): the store's schema and moving a deployment between stores.
 *
 * - `store migrate [--to postgres|sqlite]`: brings the policy's store (or the one `--to` names) to this build's
 *   schema. PostgreSQL: the numbered migrations under the advisory lock (postgres/migrations.ts migratePg), printing
 *   what it applied and the schema version; several replicas or operators migrating at once apply each step once.
 *   SQLite: opens the file (--db, or the policy's path), which applies its migrations, and reports its user_version.
 * - `store copy --from sqlite:FILE --to postgres`: copies every table of an itguard SQLite file into the PostgreSQL
 *   store (the policy's, or ITGUARD_PG_URL's while the policy still names SQLite), migrating it first; refuses a
 *   target that holds anything (postgres/copy.ts). Stop the servers writing the file before copying.
 *
 * Exit codes: 0 done, 2 usage or config error (a store that cannot be reached or used, a refused copy).
 */
import { existsSync } from 'node:fs';
import { postgresConfigOf, storeConfigOf, type StoreConfig } from '../store/config.js';
import { connectPg, type PgStore } from '../store/postgres/connect.js';
import { migratePg, pgMigrations } from '../store/postgres/migrations.js';
import { safeText } from '../terminal.js';
import { fail, out, policyOrExit, printJson, sqliteFileOf, UsageError, type Flags } from './common.js';

export async function store(flags: Flags): Promise<number> {
  const [verb, ...rest] = flags.positionals;
  if (rest.length) throw new UsageError(`store ${verb}: unexpected argument "${rest[0]}"`);
  if (verb === 'migrate') return migrate(flags);
  if (verb === 'copy') return copy(flags);
  throw new UsageError('store migrate [--to postgres|sqlite] | store copy --from sqlite:FILE --to postgres');
}

/** A long statement timeout: a migration or a copy of a large chain may take minutes (each sets its own too). */
const openFor = (cfg: { urlEnv: string }): Promise<PgStore> =>
  connectPg({ kind: 'postgres', url_env: cfg.urlEnv }, { max: 2, statementTimeoutMs: 600_000 });

async function migrate(flags: Flags): Promise<number> {
  const { policy } = policyOrExit(flags);
  const to = flags.values.to;
  if (to !== undefined && to !== 'postgres' && to !== 'sqlite')
    throw new UsageError(`store migrate --to ${String(to)}: expected postgres or sqlite`);
  const policyStore = storeConfigOf(policy);
  const cfg: StoreConfig =
    to === 'postgres'
      ? postgresConfigOf(policy)
      : to === 'sqlite'
        ? { kind: 'sqlite', path: sqliteFileOf(flags, policyStore) }
        : policyStore;
  if (cfg.kind === 'sqlite') return migrateSqlite(flags, sqliteFileOf(flags, cfg));
  const pg = await openFor(cfg);
  try {
    const r = await migratePg(pg);
    const names = new Map(pgMigrations.map((m) => [m.version, m.name]));
    const applied = r.applied.map((version) => ({ version, name: names.get(version) ?? '' }));
    const latest = Math.max(...pgMigrations.map((m) => m.version));
    if (flags.json)
      printJson({
        ok: true,
        store: { kind: 'postgres', target: pg.target, serverVersion: pg.serverVersion },
        applied,
        schemaVersion: r.version,
        latestVersion: latest,
      });
    else {
      out(`PostgreSQL store ${safeText(pg.target)} (PostgreSQL ${pg.serverVersion})`);
      if (applied.length) for (const a of applied) out(`applied migration ${a.version}: ${safeText(a.name)}`);
      else out('nothing to apply');
      out(`schema version ${r.version} (this itguard's latest: ${latest})`);
    }
    return 0;
  } finally {
    await pg.close();
  }
}

async function migrateSqlite(flags: Flags, file: string): Promise<number> {
  const { connect, openDb } = await import('../store/sqlite/db.js');
  const { migrations } = await import('../store/sqlite/migrations.js');
  // The version before, read without changing anything (a new file has none).
  let before = 0;
  if (file !== ':memory:' && existsSync(file)) {
    const bare = connect(file);
    try {
      before = bare.pragma('user_version', { simple: true }) as number;
    } finally {
      bare.close();
    }
  }
  const db = openDb(file); // applies the missing migrations, or refuses the file (DatabaseError: exit 2)
  const version = db.pragma('user_version', { simple: true }) as number;
  db.close();
  const applied = Array.from({ length: Math.max(0, version - before) }, (_, i) => before + i + 1);
  if (flags.json)
    printJson({
      ok: true,
      store: { kind: 'sqlite', target: file },
      applied: applied.map((v) => ({ version: v })),
      schemaVersion: version,
      latestVersion: migrations.length,
    });
  else {
    out(`SQLite store ${safeText(file)}`);
    out(applied.length ? `applied migrations ${applied[0]}-${applied[applied.length - 1]}` : 'nothing to apply');
    out(`schema version (user_version) ${version} (this itguard's latest: ${migrations.length})`);
  }
  return 0;
}

async function copy(flags: Flags): Promise<number> {
  const from = flags.values.from;
  const to = flags.values.to;
  if (typeof from !== 'string' || !/^sqlite(:.+)?$/.test(from))
    throw new UsageError('store copy: --from sqlite:FILE is required (the SQLite file to copy)');
  if (to !== 'postgres') throw new UsageError('store copy: --to postgres is required (the store to copy into)');
  const { policy } = policyOrExit(flags);
  const file = from === 'sqlite' ? sqliteFileOf(flags, storeConfigOf(policy)) : from.slice('sqlite:'.length);
  if (file === ':memory:' || !existsSync(file))
    return fail(flags, 'CONFIG', `store copy: ${file} does not exist; name the SQLite file with --from sqlite:FILE`, 2);
  const { openDb } = await import('../store/sqlite/db.js');
  const { copySqliteToPg, CopyRefused } = await import('../store/postgres/copy.js');
  const { rebuildVocabulary } = await import('../tools/kb/postgres.js');
  const db = openDb(file); // refuses a file that is not itguard's; brings an older one to this build's schema
  try {
    const pg = await openFor(postgresConfigOf(policy));
    try {
      const m = await migratePg(pg);
      let report;
      try {
        report = await copySqliteToPg(db, pg, rebuildVocabulary);
      } catch (e) {
        if (e instanceof CopyRefused) return fail(flags, 'REFUSED', e.message, 2);
        throw e;
      }
      const total = report.tables.reduce((n, t) => n + t.rows, 0);
      if (flags.json)
        printJson({
          ok: true,
          from: { kind: 'sqlite', target: file },
          to: { kind: 'postgres', target: pg.target, schemaVersion: m.version },
          tables: report.tables,
          rows: total,
          auditHead: report.auditHead,
        });
      else {
        out(`copied ${safeText(file)} into PostgreSQL store ${safeText(pg.target)} (schema version ${m.version})`);
        for (const t of report.tables) out(`  ${t.table.padEnd(16)} ${String(t.rows).padStart(8)}`);
        out(`  ${'total'.padEnd(16)} ${String(total).padStart(8)}`);
        out(`audit head ${report.auditHead.seq}:${report.auditHead.hash}`);
      }
      return 0;
    } finally {
      await pg.close();
    }
  } finally {
    db.close();
  }
}
