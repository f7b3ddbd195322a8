/**
 * The PostgreSQL schema on a real PostgreSQL 15 server (test/helpers/pg.ts): migrations apply once, concurrent
 * migrators serialize on the advisory lock and apply nothing twice, the schema has every SQLite table with the same
 * column names, the audit table is append-only and its chain cannot fork, and store errors are PgStoreErrors.
 */
import { createHash } from 'node:crypto';
import Database from 'better-sqlite3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { migrations as sqliteMigrations } from '../../src/store/sqlite/migrations.js';
import { connectPg, type PgStore, PgStoreError, pgUrl, inTransaction } from '../../src/store/postgres/connect.js';
import { MIGRATION_LOCK_KEY, migratePg, pgMigrations, pgSchemaVersion } from '../../src/store/postgres/migrations.js';
import { findPgBin, type Pg, startPg } from '../helpers/pg.js';

let pg: Pg;
const open: PgStore[] = [];

async function store(url: string): Promise<PgStore> {
  const s = await connectPg(url);
  open.push(s);
  return s;
}

let dbs = 0;
async function freshDb(): Promise<string> {
  return pg.createDatabase(`mig_${++dbs}`);
}

beforeAll(async () => {
  pg = await startPg();
  console.log(`PostgreSQL ${pg.version} (${pg.binDir}) ready in ${pg.startMs} ms on 127.0.0.1:${pg.port}`);
}, 60_000);

afterAll(async () => {
  await Promise.all(open.map((s) => s.close()));
  await pg?.stop();
});

const GENESIS = '0'.repeat(64);
const auditRow = (seq: number, prev: string, hash: string) => ({
  seq,
  ts: Date.now(),
  event: 'test',
  actor: 'tester',
  prev_hash: prev,
  hash,
});

describe('PostgreSQL migrations', () => {
  it('apply once; a second run applies nothing; the schema version is recorded', async () => {
    const s = await store(await freshDb());
    expect(await pgSchemaVersion(s)).toBe(0);
    const t0 = performance.now();
    const first = await migratePg(s);
    const ms = Math.round(performance.now() - t0);
    console.log(`migration 1..${first.version} applied in ${ms} ms`);
    expect(first.applied).toEqual(pgMigrations.map((m) => m.version));
    const again = await migratePg(s);
    expect(again.applied).toEqual([]);
    expect(again.version).toBe(first.version);
    expect(await pgSchemaVersion(s)).toBe(first.version);
    const rows = await s.sql`SELECT version, name, checksum FROM schema_migrations`;
    expect(rows).toHaveLength(pgMigrations.length);
  });

  it('a second migrator waits on the advisory lock while the first holds it, then applies nothing', async () => {
    const url = await freshDb();
    const [a, b, watcher] = [await store(url), await store(url), await store(url)];
    let locked!: () => void;
    const aHasLock = new Promise<void>((r) => (locked = r));
    let release!: () => void;
    const hold = new Promise<void>((r) => (release = r));
    const first = migratePg(a, {
      afterLock: async () => {
        locked();
        await hold;
      },
    });
    await aHasLock;
    const second = migratePg(b);
    // b is seen waiting for the advisory lock a holds.
    let waiting = 0;
    for (let i = 0; i < 100 && !waiting; i++) {
      const [r] = await watcher.sql<{ n: number }[]>`
        SELECT count(*)::INT AS n FROM pg_locks WHERE locktype = 'advisory' AND NOT granted`;
      waiting = r!.n;
      if (!waiting) await new Promise((r) => setTimeout(r, 20));
    }
    expect(waiting).toBe(1);
    await new Promise((r) => setTimeout(r, 200));
    release();
    const [ra, rb] = await Promise.all([first, second]);
    expect(ra.applied).toEqual(pgMigrations.map((m) => m.version));
    expect(rb.applied).toEqual([]);
    expect(rb.waitedMs).toBeGreaterThanOrEqual(150);
    const [n] = await watcher.sql<{ n: number }[]>`SELECT count(*)::INT AS n FROM schema_migrations`;
    expect(n!.n).toBe(pgMigrations.length);
  });

  it('four migrators started at once: exactly one applies, the others find the schema done', async () => {
    const url = await freshDb();
    const stores = await Promise.all([1, 2, 3, 4].map(() => store(url)));
    const results = await Promise.all(stores.map((s) => migratePg(s)));
    const appliers = results.filter((r) => r.applied.length > 0);
    expect(appliers).toHaveLength(1);
    expect(results.every((r) => r.version === pgMigrations.at(-1)!.version)).toBe(true);
    const [n] = await stores[0]!.sql<{ n: number }[]>`SELECT count(*)::INT AS n FROM schema_migrations`;
    expect(n!.n).toBe(pgMigrations.length);
  });

  it('the lock is the one MIGRATION_LOCK_KEY names: held elsewhere, migrate waits for it', async () => {
    const url = await freshDb();
    const [holder, m] = [await store(url), await store(url)];
    const reserved = await holder.sql.reserve();
    try {
      await reserved.unsafe(`SELECT pg_advisory_lock(${MIGRATION_LOCK_KEY})`);
      await expect(migratePg(m, { timeoutMs: 300 })).rejects.toThrow(/lock/i);
      await reserved.unsafe(`SELECT pg_advisory_unlock(${MIGRATION_LOCK_KEY})`);
    } finally {
      reserved.release();
    }
    expect((await migratePg(m)).applied.length).toBe(pgMigrations.length);
  });

  it('refuses a database migrated by a newer itguard, or whose recorded migration text differs', async () => {
    const s = await store(await freshDb());
    await migratePg(s);
    await s.sql`INSERT INTO schema_migrations VALUES (9999, 'future', 'x', 0)`;
    const e = await migratePg(s).catch((x: unknown) => x);
    expect(e).toBeInstanceOf(PgStoreError);
    expect((e as Error).name).toBe('DatabaseError');
    expect((e as Error).message).toMatch(/migration 9999, which this itguard does not know/);
    await s.sql`DELETE FROM schema_migrations WHERE version = 9999`;
    await s.sql`UPDATE schema_migrations SET checksum = 'edited' WHERE version = 1`;
    await expect(migratePg(s)).rejects.toThrow(/applied with a different text/);
  });

  it('has every table of the SQLite schema with the same column names (adapters map 1:1)', async () => {
    const s = await store(await freshDb());
    await migratePg(s);
    const lite = new Database(':memory:');
    for (const m of sqliteMigrations) lite.exec(m);
    // FTS5 tables (and their shadow tables) have no PostgreSQL counterpart: kb_articles.search replaces them.
    const fts = /^kb_(fts|words)($|_(data|idx|docsize|config|content))/;
    const liteTables = (
      lite
        .prepare("SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'")
        .pluck()
        .all() as string[]
    ).filter((t) => !fts.test(t));
    const pgCols = await s.sql<{ table_name: string; column_name: string }[]>`
      SELECT table_name, column_name FROM information_schema.columns WHERE table_schema = 'public'`;
    const byTable = new Map<string, Set<string>>();
    for (const c of pgCols) byTable.set(c.table_name, (byTable.get(c.table_name) ?? new Set()).add(c.column_name));
    for (const t of liteTables) {
      const cols = (lite.prepare(`SELECT name FROM pragma_table_info(?)`).pluck().all(t) as string[]).sort();
      expect(byTable.has(t), `table ${t}`).toBe(true);
      const extra = t === 'kb_articles' ? ['search'] : [];
      expect([...byTable.get(t)!].sort(), `columns of ${t}`).toEqual([...cols, ...extra].sort());
    }
    const pgOnly = [...byTable.keys()].filter((t) => !liteTables.includes(t)).sort();
    expect(pgOnly).toEqual(['audit_head', 'schema_migrations']);
    lite.close();
  });
});

describe('PostgreSQL schema behaviour', () => {
  let s: PgStore;
  let url: string;
  beforeAll(async () => {
    url = await freshDb();
    s = await store(url);
    await migratePg(s);
  });

  it('the audit table refuses UPDATE, DELETE and TRUNCATE, and the head moves only by appending', async () => {
    await s.sql`INSERT INTO audit ${s.sql(auditRow(1, GENESIS, 'h1'))}`;
    await s.sql`INSERT INTO audit ${s.sql(auditRow(2, 'h1', 'h2'))}`;
    await expect(s.sql`UPDATE audit SET actor = 'mallory' WHERE seq = 1`).rejects.toThrow(/audit is append-only/);
    await expect(s.sql`DELETE FROM audit WHERE seq = 2`).rejects.toThrow(/audit is append-only/);
    await expect(s.sql`TRUNCATE audit`).rejects.toThrow(/audit is append-only/);
    await expect(s.sql`UPDATE audit_head SET seq = 0, hash = ${GENESIS}`).rejects.toThrow(/only by appending/);
    await expect(s.sql`DELETE FROM audit_head`).rejects.toThrow(/only by appending/);
    const rows = await s.sql<{ seq: number; actor: string }[]>`SELECT seq, actor FROM audit ORDER BY seq`;
    expect(rows.map((r) => [r.seq, r.actor])).toEqual([
      [1, 'tester'],
      [2, 'tester'],
    ]);
    const [head] = await s.sql<{ seq: number; hash: string }[]>`SELECT seq, hash FROM audit_head`;
    expect(head).toEqual({ seq: 2, hash: 'h2' });
  });

  it('an append that does not continue the head is refused as a serialization failure (40001): no fork', async () => {
    const [head] = await s.sql<{ seq: number; hash: string }[]>`SELECT seq, hash FROM audit_head`;
    const gap = await s.sql`INSERT INTO audit ${s.sql(auditRow(head!.seq + 2, head!.hash, 'x'))}`.catch((e) => e);
    expect((gap as { code?: string }).code).toBe('40001');
    const fork = await s.sql`INSERT INTO audit ${s.sql(auditRow(head!.seq, 'h0', 'y'))}`.catch((e) => e);
    expect((fork as { code?: string }).code).toMatch(/^(40001|23505)$/);
    const wrongPrev = await s.sql`INSERT INTO audit ${s.sql(auditRow(head!.seq + 1, 'not-the-head', 'z'))}`.catch(
      (e) => e,
    );
    expect((wrongPrev as { code?: string }).code).toBe('40001');
    // Two writers that read the same head: one commits, the other is refused and retries on the new head.
    const race = await Promise.allSettled(
      ['a', 'b'].map((w) =>
        s.sql.begin(async (tx) => {
          await tx`INSERT INTO audit ${tx(auditRow(head!.seq + 1, head!.hash, `race-${w}`))}`;
        }),
      ),
    );
    expect(race.filter((r) => r.status === 'fulfilled')).toHaveLength(1);
    const [after] = await s.sql<{ seq: number }[]>`SELECT seq FROM audit_head`;
    expect(after!.seq).toBe(head!.seq + 1);
  });

  it('three clients appending at once keep one contiguous chain (head locked per append, or retried on 40001)', async () => {
    const c = await Promise.all([1, 2, 3].map(() => store(url)));
    const link = (prev: string, seq: number, w: string) =>
      createHash('sha256').update(`${prev}|${seq}|${w}`).digest('hex');
    const runs = { locked: 0, unlocked: 0 }; // transaction runs: 60 each when nothing had to retry
    const append = (x: PgStore, w: string, lockHead: boolean) =>
      inTransaction(
        x,
        async (tx) => {
          runs[lockHead ? 'locked' : 'unlocked'] += 1;
          const [h] = lockHead
            ? await tx<{ seq: number; hash: string }[]>`SELECT seq, hash FROM audit_head WHERE id = 1 FOR UPDATE`
            : await tx<{ seq: number; hash: string }[]>`SELECT seq, hash FROM audit_head WHERE id = 1`;
          const seq = h!.seq + 1;
          await tx`INSERT INTO audit ${tx({ ...auditRow(seq, h!.hash, link(h!.hash, seq, w)), actor: w })}`;
        },
        { attempts: 50 },
      );
    const [before] = await s.sql<{ n: number }[]>`SELECT count(*)::INT AS n FROM audit`;
    for (const lockHead of [true, false])
      await Promise.all(
        c.map(async (x, i) => {
          for (let k = 0; k < 20; k++) await append(x, `w${i}-${k}-${lockHead}`, lockHead);
        }),
      );
    const rows = await s.sql<{ seq: number; actor: string; prev_hash: string; hash: string }[]>`
      SELECT seq, actor, prev_hash, hash FROM audit WHERE seq > ${before!.n} ORDER BY seq`;
    expect(rows).toHaveLength(120);
    console.log(
      `60 appends from 3 clients: ${runs.locked} runs with the head locked, ${runs.unlocked} without (retried on 40001)`,
    );
    expect(runs.locked).toBe(60);
    const [start] = await s.sql<{ hash: string }[]>`SELECT hash FROM audit WHERE seq = ${before!.n}`;
    let prev = start!.hash;
    for (const [k, r] of rows.entries()) {
      expect(r.seq).toBe(before!.n + 1 + k);
      expect(r.prev_hash).toBe(prev);
      expect(r.hash).toBe(link(prev, r.seq, r.actor));
      prev = r.hash;
    }
  });

  it('a change of the kill switch row notifies itguard_killswitch (a wake-up; the row stays the truth)', async () => {
    const got: string[] = [];
    const listener = await s.sql.listen('itguard_killswitch', (payload) => got.push(payload));
    await s.sql`UPDATE killswitch SET engaged = 1, reason = 'test', actor = 'ops', changed_at = itguard_now_ms()`;
    for (let i = 0; i < 100 && !got.length; i++) await new Promise((r) => setTimeout(r, 10));
    expect(got).toEqual(['1']);
    await listener.unlisten();
    const [k] = await s.sql<{ engaged: number; changed_at: number }[]>`SELECT engaged, changed_at FROM killswitch`;
    expect(k!.engaged).toBe(1);
  });

  it('reads BIGINT as a number; itguard_now_ms() is the database clock in ms', async () => {
    const [r] = await s.sql<{ now: number }[]>`SELECT itguard_now_ms() AS now`;
    expect(typeof r!.now).toBe('number');
    expect(Math.abs(r!.now - Date.now())).toBeLessThan(5000);
  });

  it('keeps column constraints of the SQLite schema: checks, uniques, the one kill switch row', async () => {
    await expect(s.sql`INSERT INTO killswitch VALUES (2, 0, 'x', 'y', 0)`).rejects.toThrow(/check/i);
    const idem = {
      principal: 'p',
      key: 'k',
      explicit: 1,
      tool: 't',
      args_sha256: 'a',
      request_id: 'r',
      state: 'in_flight',
      trace_id: 'tr',
      owner: 'replica-1',
      lease_until: Date.now() + 1000,
      created_at: Date.now(),
      updated_at: Date.now(),
      expires_at: Date.now() + 86_400_000,
    };
    await s.sql`INSERT INTO idempotency ${s.sql(idem)}`;
    const dup = await s.sql`INSERT INTO idempotency ${s.sql(idem)} ON CONFLICT DO NOTHING RETURNING key`;
    expect(dup).toHaveLength(0);
    await expect(s.sql`INSERT INTO idempotency ${s.sql({ ...idem, key: 'k2', state: 'bogus' })}`).rejects.toThrow(
      /check/i,
    );
  });

  it('inTransaction retries a serialization failure and gives up as a retryable PgStoreError', async () => {
    let runs = 0;
    const e = await inTransaction(
      s,
      async (tx) => {
        runs += 1;
        await tx`SELECT 1`;
        throw Object.assign(new Error('could not serialize access'), { code: '40001' });
      },
      { attempts: 3 },
    ).catch((x: unknown) => x);
    expect(runs).toBe(3);
    expect(e).toBeInstanceOf(PgStoreError);
    expect((e as PgStoreError).retryable).toBe(true);
  });
});

describe('PostgreSQL connection failures fail closed', () => {
  it('an unreachable server is a one-line DatabaseError naming the server without its password', async () => {
    const e = await connectPg(`postgres://itguard:s3cret@127.0.0.1:1/nowhere`, { connectTimeoutS: 2 }).catch(
      (x: unknown) => x,
    );
    expect(e).toBeInstanceOf(PgStoreError);
    const err = e as PgStoreError;
    expect(err.name).toBe('DatabaseError');
    expect(err.message).toMatch(
      /PostgreSQL store postgres:\/\/itguard:\*\*\*@127\.0\.0\.1:1\/nowhere cannot be reached/,
    );
    expect(err.message).not.toMatch(/s3cret/);
    expect(err.message).not.toMatch(/\n/);
  });

  it('a database that does not exist, and a missing or wrong url_env, are refused with what to do', async () => {
    const e = await connectPg(pg.url.replace(/\/[^/]+$/, '/no_such_db')).catch((x: unknown) => x);
    expect((e as Error).message).toMatch(/does not exist; create the database or fix the URL/);
    expect(() => pgUrl({ kind: 'postgres' }, {})).toThrow(/ITGUARD_PG_URL is not set/);
    expect(() => pgUrl({ kind: 'postgres', url_env: 'X_PG' }, { X_PG: 'mysql://a@b/c' })).toThrow(
      /X_PG is not a postgres:\/\/ URL/,
    );
    expect(pgUrl({ kind: 'postgres', url_env: 'X_PG' }, { X_PG: pg.url })).toBe(pg.url);
  });
});

describe('the test server harness', () => {
  it('fails with how to install PostgreSQL when the binaries are missing (it never skips)', () => {
    const saved = process.env.ITGUARD_PG_BIN;
    process.env.ITGUARD_PG_BIN = '/nonexistent/pg/bin';
    try {
      expect(() => findPgBin()).toThrow(/holds no initdb and postgres: install it .*apt-get install -y postgresql/);
    } finally {
      if (saved === undefined) delete process.env.ITGUARD_PG_BIN;
      else process.env.ITGUARD_PG_BIN = saved;
    }
  });
});
