/**
 * One test database on either store (issue 20 item 4), for suites that drive real `itguard serve` processes and
 * judge the outcome from the database's own tables: the crash loop and the containment scenarios.
 *
 * - SQLite: a file in the test's temporary directory, created and seeded by planner.ts seedDb (in-process, before
 *   any server starts); read with better-sqlite3 (read-only, WAL: sees what the servers committed).
 * - PostgreSQL: a fresh database on the one server this test file starts (test/helpers/pg.ts startPg, on first
 *   use); every itguard process gets the policy's `store: { kind: postgres, url_env: ITGUARD_PG_URL }` and
 *   ITGUARD_PG_URL in its environment. The `--db` path the suites still pass is never created (the policy names
 *   the store). Seeding starts one `serve --http` (which migrates and seeds the demo on a fresh database) and
 *   makes the tokens with `itguard token create`, as an operator would.
 *
 * Queries are written once, in the SQL both stores read, with `?` placeholders (translated to `$n` for
 * PostgreSQL); BIGINT and NUMERIC come back as JS numbers on both. What differs is spelled by a helper here
 * (`jsonNumber`). Task and scope keys (task_key, scope_key) are escaped on PostgreSQL (runner.ts pgKey): compare them
 * by value only after the same escaping (no query here does).
 *
 * STORES (comma-separated, default `sqlite,postgres`) picks the stores a suite runs on.
 */
import { join } from 'node:path';
import Database from 'better-sqlite3';
import postgres from 'postgres';
import type { PolicyBuilder } from './policy-builder.js';
import { runCli, serveHttp } from './cli.js';
import { startPg, type Pg } from './pg.js';
import { seedDb, until } from './planner.js';

export type StoreKind = 'sqlite' | 'postgres';
export const ALL_STORES: readonly StoreKind[] = ['sqlite', 'postgres'];

/** The stores to run on: STORES=sqlite, STORES=postgres, or both (the default). */
export function storesUnderTest(): StoreKind[] {
  const asked = (process.env.STORES ?? ALL_STORES.join(','))
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);
  for (const s of asked) if (!ALL_STORES.includes(s as StoreKind)) throw new Error(`STORES: unknown store ${s}`);
  return ALL_STORES.filter((s) => asked.includes(s));
}

export const PG_URL_ENV = 'ITGUARD_PG_URL';
const PG_STORE_YAML = `store: { kind: postgres, url_env: ${PG_URL_ENV} }\n`;

/** The policy, naming the store: a builder is edited in place (and returned), a YAML text gets a `store:` line. */
export function onStore(kind: StoreKind, policy: PolicyBuilder): PolicyBuilder;
export function onStore(kind: StoreKind, policy: string): string;
export function onStore(kind: StoreKind, policy: PolicyBuilder | string): PolicyBuilder | string {
  if (kind === 'sqlite') return policy;
  if (typeof policy === 'string') {
    if (/^store:/m.test(policy)) throw new Error('onStore: the policy text already names a store');
    return `${policy.replace(/\n?$/, '\n')}${PG_STORE_YAML}`;
  }
  return policy.edit((d) => {
    d.store = { kind: 'postgres', url_env: PG_URL_ENV };
  });
}

/**
 * A killed attempt's idempotency record stays in flight until its lease ends. On PostgreSQL that is a hold of 15 s
 * on the database's clock, renewed while the process that runs the call lives (DESIGN §5: runner liveness by lease,
 * never by process id; store/postgres/leases.ts); SQLite also takes a record over at once when its owner process is
 * gone. Until then a retry with the key answers IN_PROGRESS: suites that kill processes wait with `leasesEnded`
 * before the retries that must get an answer.
 */
export const PG_HOLD_MS = 15_000;

/** Waits until no idempotency record in flight holds a lease (every killed attempt's key can be taken over). */
export async function leasesEnded(db: TestDb, ms = PG_HOLD_MS + 15_000): Promise<void> {
  await until(
    "the killed attempts' leases to end",
    ms,
    async () => {
      const last = await db.one<{ n: number | null }>(
        "SELECT max(lease_until) AS n FROM idempotency WHERE state = 'in_flight' AND owner NOT LIKE 'approval:%'",
      );
      return (last?.n ?? 0) < Date.now() ? true : undefined;
    },
    250,
  );
}

/** One database of a test, on either store. */
export interface TestDb {
  kind: StoreKind;
  /** The `--db` argument for itguard processes: the SQLite file; on PostgreSQL a path that is never created. */
  db: string;
  /** What every itguard process of this database needs in its environment (ITGUARD_PG_URL on PostgreSQL). */
  env: Record<string, string>;
  /** Creates the schema and the demo data before any server starts, and makes bearer tokens for the principals. */
  seed(policyFile: string, tokensFor?: string[]): Promise<Record<string, string>>;
  /** Every row of a query (`?` placeholders). */
  query<T = Record<string, unknown>>(sql: string, ...params: unknown[]): Promise<T[]>;
  /** The first row, or undefined. */
  one<T = Record<string, unknown>>(sql: string, ...params: unknown[]): Promise<T | undefined>;
  /** The `n` column of a one-row query (`SELECT count(*) AS n ...`). */
  count(sql: string, ...params: unknown[]): Promise<number>;
  /** A write from outside itguard (what an admin or another system does to the tables); the rows it changed. */
  exec(sql: string, ...params: unknown[]): Promise<number>;
  /** The SQL for a number inside a JSON text column: `json_extract(col, '$.f')` / `(col::jsonb ->> 'f')::float8`. */
  jsonNumber(column: string, field: string): string;
  close(): Promise<void>;
}

/** A JSON column's value as an object, whether the driver gave the text or (a jsonb column) the parsed value. */
export const jsonOf = <T = Record<string, unknown>>(v: unknown): T =>
  (typeof v === 'string' ? JSON.parse(v) : (v ?? {})) as T;

/**
 * The databases of one test file: `fresh(dir, name)` makes a new one on the file's store. On PostgreSQL the server
 * starts on the first `fresh` (one per test file) and `stop()` shuts it down; call it from afterAll.
 */
export function storeHost(kind: StoreKind) {
  let pg: Promise<Pg> | undefined;
  const dbs: TestDb[] = [];
  let n = 0;
  return {
    kind,
    async fresh(dir: string, name: string): Promise<TestDb> {
      const db =
        kind === 'sqlite'
          ? sqliteDb(join(dir, `${name}.db`))
          : await pgDb(
              await (pg ??= startPg({ database: 'host' })),
              join(dir, 'unused', `${name}.db`),
              `${name.toLowerCase().replace(/[^a-z0-9_]/g, '_')}_${++n}`,
            );
      dbs.push(db);
      return db;
    },
    /** Closes the probes' connections (the servers' processes are the suite's to stop first) and the server. */
    async stop(): Promise<void> {
      await Promise.all(dbs.splice(0).map((d) => d.close().catch(() => undefined)));
      const server = await pg?.catch(() => undefined);
      pg = undefined;
      await server?.stop();
    },
  };
}
export type StoreHost = ReturnType<typeof storeHost>;

function sqliteDb(file: string): TestDb {
  const open = <T>(readonly: boolean, f: (d: Database.Database) => T): T => {
    const d = new Database(file, { readonly, fileMustExist: true });
    try {
      d.pragma('busy_timeout = 5000');
      return f(d);
    } finally {
      d.close();
    }
  };
  const query = async <T>(sql: string, ...params: unknown[]) => open(true, (d) => d.prepare(sql).all(...params) as T[]);
  return {
    kind: 'sqlite',
    db: file,
    env: {},
    seed: async (policyFile, tokensFor = []) => seedDb(file, policyFile, tokensFor),
    query,
    one: async <T>(sql: string, ...params: unknown[]) =>
      open(true, (d) => d.prepare(sql).get(...params) as T | undefined),
    count: async (sql, ...params) => open(true, (d) => (d.prepare(sql).get(...params) as { n: number }).n),
    exec: async (sql, ...params) => open(false, (d) => d.prepare(sql).run(...params).changes),
    jsonNumber: (column, field) => `json_extract(${column}, '$.${field}')`,
    close: async () => undefined,
  };
}

/** int8 and numeric (counts, ms timestamps, sums) as JS numbers, as the SQLite driver gives them. */
const asNumber = (oid: number) => ({
  to: oid,
  from: [oid],
  serialize: (x: number | string) => String(x),
  parse: (x: string) => Number(x),
});

/** `?` placeholders as `$1`, `$2`, ... (outside quoted literals). */
export function dollarParams(sql: string): string {
  let i = 0;
  return sql.replace(/'(?:[^']|'')*'|"(?:[^"]|"")*"|\?/g, (m) => (m === '?' ? `$${++i}` : m));
}

async function pgDb(pg: Pg, unusedPath: string, database: string): Promise<TestDb> {
  const url = await pg.createDatabase(database);
  const env = { [PG_URL_ENV]: url };
  const sql = postgres(url, {
    max: 2,
    onnotice: () => {},
    types: { int8: asNumber(20), numeric: asNumber(1700) },
    connection: { TimeZone: 'UTC' },
  });
  const query = async <T>(text: string, ...params: unknown[]) =>
    (await sql.unsafe(dollarParams(text), params as postgres.ParameterOrJSON<never>[])) as unknown as T[];
  return {
    kind: 'postgres',
    db: unusedPath,
    env,
    async seed(policyFile, tokensFor = []) {
      // A serving process migrates the new database and seeds the demo (policy `demo: true`) before it serves:
      // one, alone, before the suite's servers start together (its stderr is in the error if it cannot start).
      const first = await serveHttp(unusedPath, ['--policy', policyFile], env);
      await first.stop();
      return Object.fromEntries(
        tokensFor.map((p) => {
          const r = runCli(
            ['token', 'create', '--principal', p, '--label', 'scenario token', '--policy', policyFile],
            env,
          );
          if (r.code !== 0) throw new Error(`token create --principal ${p}: exit ${r.code}\n${r.stderr}`);
          return [p, r.stdout.trim()];
        }),
      );
    },
    query,
    one: async <T>(text: string, ...params: unknown[]) => (await query<T>(text, ...params))[0],
    count: async (text, ...params) => Number((await query<{ n: number }>(text, ...params))[0]!.n),
    exec: async (text, ...params) =>
      (await sql.unsafe(dollarParams(text), params as postgres.ParameterOrJSON<never>[])).count ?? 0,
    jsonNumber: (column, field) => `(${column}::jsonb ->> '${field}')::double precision`,
    close: () => sql.end({ timeout: 5 }),
  };
}
