/**
 * Opens the PostgreSQL store (DESIGN §5: `store: { kind: postgres, url_env: ITGUARD_PG_URL }`, PostgreSQL 15+) with
 * postgres.js (porsager/postgres, pinned in package.json). One pool per process; every limit is set so that a
 * store that stops answering fails the call rather than holding it: connect, queue, statement, lock and
 * idle-in-transaction timeouts, and a client-side query timeout as the backstop for a silent network.
 *
 * Every failure becomes a `PgStoreError` (name `DatabaseError`, as the SQLite store's: the CLI prints it on one line
 * and exits 2), whose message names the server (never the password), what went wrong and what to do, and whose
 * `retryable` says whether the same unit of work may be tried again (serialization failure, deadlock, a dropped
 * connection before anything was sent). A caller that gets one refuses the call: the store fails closed.
 */
import postgres, { type Sql, type TransactionSql } from 'postgres';
import { config } from '../../config.js';

/** The `store:` entry of the policy for PostgreSQL. */
export interface PgStoreConfig {
  kind: 'postgres';
  /** The environment variable holding the URL (default ITGUARD_PG_URL): the URL carries a password, the policy file does not. */
  url_env?: string;
}

export const DEFAULT_URL_ENV = 'ITGUARD_PG_URL';
export const MIN_SERVER_VERSION = 15;

export interface PgConnectOptions {
  /** Connections in the pool (default 10: a replica's admission and settlement units are short transactions). */
  max?: number;
  /** Longest a statement may run on the server (ms, default 5000). Migrations set their own. */
  statementTimeoutMs?: number;
  /** Longest a statement waits for a row or table lock (ms, default: the statement timeout). */
  lockTimeoutMs?: number;
  /** Seconds to establish a connection (default 5). */
  connectTimeoutS?: number;
  /** Seconds a query may wait for a free connection before it is refused unsent (default 10). */
  queueTimeoutS?: number;
  /** Seconds an idle connection is kept (default 30). */
  idleTimeoutS?: number;
  /** `application_name` (default `itguard <replica id>`: ITGUARD_REPLICA_ID, else the host name): shown in pg_stat_activity. */
  applicationName?: string;
  /** Where the server's NOTICE messages go (default: dropped; never stdout, which carries MCP frames under stdio). */
  onNotice?: (message: string) => void;
  /** Called with every statement sent (BEGIN and COMMIT included): benchmarks and tests count round trips with it. */
  onQuery?: (query: string) => void;
}

/** The pool and what it is connected to. */
export interface PgStore {
  sql: Sql;
  /** The URL without its password, for messages. */
  target: string;
  /** The server's major version (connectPg only; 0 from openPg until it is asked). */
  serverVersion: number;
  close(): Promise<void>;
}

/** Why the PostgreSQL store cannot be used, or refused one unit of work. */
export class PgStoreError extends Error {
  override readonly name = 'DatabaseError';
  constructor(
    readonly target: string,
    message: string,
    /** SQLSTATE, or the client's code (ECONNREFUSED, CONNECT_TIMEOUT, QUERY_TIMEOUT, …). */
    readonly code: string | undefined,
    /** True when the same unit of work may be tried again from its start. */
    readonly retryable: boolean,
    options?: { cause?: unknown },
  ) {
    super(message.replace(/\s*\n\s*/g, ' '), options);
  }
}

/** The URL with its password replaced by `***`; a string that is not a URL is not echoed at all. */
export function redactUrl(url: string): string {
  try {
    const u = new URL(url);
    if (u.password) u.password = '***';
    return u.toString();
  } catch {
    return 'the PostgreSQL URL (not a valid URL)';
  }
}

/** The URL of the store: read from the variable `url_env` names; missing or not postgres:// is refused. */
export function pgUrl(store: PgStoreConfig, env: NodeJS.ProcessEnv = process.env): string {
  const name = store.url_env ?? DEFAULT_URL_ENV;
  const url = env[name];
  if (!url)
    throw new PgStoreError(
      `$${name}`,
      `store kind postgres: ${name} is not set; set it to postgres://USER:PASSWORD@HOST:5432/DATABASE`,
      undefined,
      false,
    );
  if (!/^postgres(ql)?:\/\//.test(url))
    throw new PgStoreError(
      `$${name}`,
      `store kind postgres: ${name} is not a postgres:// URL (${redactUrl(url)}); set it to postgres://USER:PASSWORD@HOST:5432/DATABASE`,
      undefined,
      false,
    );
  return url;
}

/** int8 (BIGINT: ms timestamps, sequence numbers, counts) as a JS number; postgres.js reads it as a string by default. */
const int8AsNumber = {
  to: 20,
  from: [20],
  serialize: (x: number | bigint | string) => String(x),
  parse: (x: string) => {
    const n = Number(x);
    if (!Number.isSafeInteger(n)) throw new RangeError(`bigint ${x} does not fit a JavaScript number`);
    return n;
  },
};

/** Opens the pool; nothing is sent until the first query. */
export function openPg(urlOrStore: string | PgStoreConfig, opts: PgConnectOptions = {}): PgStore {
  const url = typeof urlOrStore === 'string' ? urlOrStore : pgUrl(urlOrStore);
  const target = redactUrl(url);
  const statementTimeoutMs = opts.statementTimeoutMs ?? 5000;
  const replica = config().replicaId;
  const sql = postgres(url, {
    max: opts.max ?? 10,
    connect_timeout: opts.connectTimeoutS ?? 5,
    idle_timeout: opts.idleTimeoutS ?? 30,
    queue_timeout: opts.queueTimeoutS ?? 10,
    // The backstop when the server or network goes silent (statement_timeout is the server's own limit).
    query_timeout: Math.ceil(statementTimeoutMs / 1000) + 10,
    onnotice: (n) => opts.onNotice?.(String(n.message ?? n)),
    ...(opts.onQuery ? { debug: (_c: number, query: string) => opts.onQuery!(query) } : {}),
    types: { bigint: int8AsNumber },
    connection: {
      application_name: opts.applicationName ?? (replica ? `itguard ${replica}` : 'itguard'),
      statement_timeout: statementTimeoutMs,
      lock_timeout: opts.lockTimeoutMs ?? statementTimeoutMs,
      // A replica that dies inside a transaction must not hold its locks (a cap row, the audit head) for long.
      idle_in_transaction_session_timeout: 30_000,
      TimeZone: 'UTC',
    },
  });
  return { sql, target, serverVersion: 0, close: () => sql.end({ timeout: 5 }) };
}

/** Opens the pool and checks the server: reachable, PostgreSQL 15 or newer. Refuses with a PgStoreError. */
export async function connectPg(urlOrStore: string | PgStoreConfig, opts: PgConnectOptions = {}): Promise<PgStore> {
  const store = openPg(urlOrStore, opts);
  try {
    const [row] = await store.sql<{ v: string }[]>`SELECT current_setting('server_version_num') AS v`;
    const major = Math.floor(Number(row?.v ?? 0) / 10000);
    if (major < MIN_SERVER_VERSION)
      throw new PgStoreError(
        store.target,
        `PostgreSQL store ${store.target} runs PostgreSQL ${major}; itguard needs ${MIN_SERVER_VERSION} or newer`,
        undefined,
        false,
      );
    store.serverVersion = major;
    return store;
  } catch (e) {
    await store.sql.end({ timeout: 1 }).catch(() => {});
    throw toPgStoreError(store.target, e);
  }
}

/** SQLSTATEs after which the whole unit of work may be run again: serialization failure, deadlock. */
const RETRY_SQLSTATES = new Set(['40001', '40P01']);
/** Client codes where the connection failed before or between statements: the server is away, try later. */
const CONNECTION_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ENOTFOUND',
  'EAI_AGAIN',
  'ETIMEDOUT',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'EPIPE',
  'CONNECT_TIMEOUT',
  'CONNECTION_CLOSED',
  'CONNECTION_ENDED',
  'CONNECTION_DESTROYED',
  'QUEUE_TIMEOUT',
]);

/** Any error from the client or the server as a PgStoreError: one sentence naming the server, the cause, what to do. */
export function toPgStoreError(target: string, e: unknown): PgStoreError {
  if (e instanceof PgStoreError) return e;
  const err = e as { code?: unknown; message?: unknown; severity?: unknown; errno?: unknown } | null;
  const code = typeof err?.code === 'string' ? err.code : undefined;
  const message = err && typeof err.message === 'string' ? err.message : String(e);
  const at = `PostgreSQL store ${target}`;
  let what: string;
  let retryable = false;
  if (code && RETRY_SQLSTATES.has(code)) {
    what = `${at}: ${message} (SQLSTATE ${code}); the unit of work can be retried`;
    retryable = true;
  } else if (code && CONNECTION_CODES.has(code)) {
    what = `${at} cannot be reached (${code}: ${message}); check that the server is up and the URL's host and port`;
    retryable = code === 'QUEUE_TIMEOUT' || code === 'CONNECT_TIMEOUT' || code === 'ECONNREFUSED';
  } else if (code === '57014' || code === 'QUERY_TIMEOUT') {
    what = `${at}: a statement ran out of time (${message}); the store is overloaded or a lock is held`;
  } else if (code === '55P03') {
    what = `${at}: a lock was not granted in time (${message}); another replica holds it`;
  } else if (code === '28P01' || code === '28000') {
    what = `${at} refused the login (${message}); check the user and password in the URL`;
  } else if (code === '3D000') {
    what = `${at}: ${message}; create the database or fix the URL`;
  } else if (code === '42501') {
    what = `${at}: permission denied (${message}); grant the itguard role what the store needs`;
  } else if (code && /^[0-9A-Z]{5}$/.test(code)) {
    what = `${at}: ${message} (SQLSTATE ${code})`;
  } else {
    what = `${at}: ${message}${code ? ` (${code})` : ''}`;
  }
  return new PgStoreError(target, what, code, retryable, { cause: e });
}

/**
 * Runs `fn` in a transaction, again from its start when PostgreSQL asks for it (40001, 40P01), up to `attempts`
 * times with a short jittered backoff; every other failure, and the last retryable one, is thrown as a PgStoreError.
 * `fn` must have no effect outside the transaction: it may run more than once.
 */
export async function inTransaction<T>(
  store: PgStore,
  fn: (tx: TransactionSql) => Promise<T>,
  opts: { isolation?: 'read committed' | 'repeatable read' | 'serializable'; attempts?: number } = {},
): Promise<T> {
  const attempts = opts.attempts ?? 5;
  const begin = opts.isolation ? `isolation level ${opts.isolation}` : '';
  for (let attempt = 1; ; attempt++) {
    try {
      return (await store.sql.begin(begin, fn)) as T;
    } catch (e) {
      const err = toPgStoreError(store.target, e);
      if (!err.retryable || !err.code || !RETRY_SQLSTATES.has(err.code) || attempt >= attempts) throw err;
      await new Promise((r) => setTimeout(r, Math.random() * 5 * 2 ** attempt));
    }
  }
}
