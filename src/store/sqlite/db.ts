/**
 * Opens the one SQLite file itguard keeps its state in: WAL, busy_timeout, durability, and schema
 * migrations keyed by `PRAGMA user_version`. Every other store module receives the `Db` this returns.
 * A file that cannot be itguard's state (not SQLite, another program's database, a newer schema, locked,
 * corrupt) is refused at open with a `DatabaseError`: one sentence naming the file, what is wrong and what to do.
 */
import Database from 'better-sqlite3';
import { mkdirSync, statSync } from 'node:fs';
import { dirname } from 'node:path';
import { migrations } from './migrations.js';
import type { SqliteDb, SqliteStatement } from './driver.js';
import { NodeSqliteDb } from './driver-node.js';

/** Why a database file cannot be used. The CLI prints the message alone on one line and exits 2. */
export class DatabaseError extends Error {
  override readonly name = 'DatabaseError';
  constructor(
    readonly file: string,
    message: string,
  ) {
    // One line whatever SQLite said: quick_check's report starts with "*** in database main ***" and a newline.
    super(
      message
        .replace(/\*\*\* in database \w+ \*\*\*/g, '')
        .replace(/\s*\n\s*/g, ' ')
        .replace(/\(\s+/g, '('),
    );
  }
}

/** What openDb's checks find (foreign, newer, corrupt), worded after "database FILE "; toDatabaseError adds the file. */
class OpenRefusal extends Error {}

/**
 * `PRAGMA quick_check(1)` at open reads every page once (it stops at the first error, but a sound file has none).
 * Measured on a 101 MB database of 325,000 audit-like rows (2-core Xeon VM, NVMe): 116-130 ms with the file in the
 * page cache, 1.09 s cold. That is paid by each CLI command and each `serve` start, so it runs for files up to
 * 256 MiB (about 0.3 s warm, 3 s cold); a larger file is opened unchecked — check it offline with
 * `sqlite3 FILE 'PRAGMA quick_check'`. A mid-file corrupt page is otherwise found only by the first read or write
 * that touches it, as INTERNAL on every such call.
 */
export const QUICK_CHECK_MAX_BYTES = 256 * 1024 * 1024;

/** The connection: better-sqlite3's `Database`, or driver-node.ts's on `node:sqlite` (see sqliteDriver). */
export type Db = SqliteDb;
/** A prepared statement (for the embedded backends' own domain tables). */
export type Statement<P extends unknown[] = unknown[], R = unknown> = SqliteStatement<P, R>;
export type SqliteDriver = 'better-sqlite3' | 'node';

/**
 * Which SQLite driver openDb uses: `ITGUARD_SQLITE_DRIVER` (`node` or `better-sqlite3`) when set, else Node's
 * built-in `node:sqlite` on Node >= 24 and better-sqlite3 below. better-sqlite3 12 aborts the process on Node 24
 * (its ObjectWrap destructors run Node 24's environment cleanup hook removal at GC: `Assertion failed: (env) !=
 * nullptr`), and better-sqlite3 13 crashes Node 20 (it needs Node-API 10); node:sqlite does not exist on Node 20.
 */
export function sqliteDriver(env: NodeJS.ProcessEnv = process.env, node = process.versions.node): SqliteDriver {
  const forced = env.ITGUARD_SQLITE_DRIVER?.trim();
  if (forced === 'node' || forced === 'better-sqlite3') return forced;
  if (forced) throw new Error(`ITGUARD_SQLITE_DRIVER=${forced} is not a SQLite driver (node or better-sqlite3)`);
  return Number(node.split('.')[0]) >= 24 ? 'node' : 'better-sqlite3';
}

/**
 * A bare connection to `file` through the driver sqliteDriver() picks: none of openDb's checks, pragmas or
 * migrations. openDb starts from it; tests use it to write a file as another program or an older itguard would (one
 * driver per process: two SQLite libraries in one process do not see each other's file locks).
 */
export function connect(file: string, busyTimeoutMs = 5000): Db {
  return sqliteDriver() === 'node' ? new NodeSqliteDb(file, { timeout: busyTimeoutMs }) : new Database(file);
}
export type Durability = 'strict' | 'fast';

export interface OpenOptions {
  durability?: Durability;
  /** How long a writer waits for another process's lock before SQLITE_BUSY (ms). */
  busyTimeoutMs?: number;
}

export function openDb(file: string, opts: OpenOptions = {}): Db {
  const busyTimeoutMs = opts.busyTimeoutMs ?? 5000;
  const memory = file === ':memory:';
  let db: Db | undefined;
  try {
    if (!memory) mkdirSync(dirname(file), { recursive: true });
    db = connect(file, busyTimeoutMs);
    db.pragma(`busy_timeout = ${busyTimeoutMs}`);
    checkIdentity(db);
    if (!memory && statSync(file).size <= QUICK_CHECK_MAX_BYTES) {
      const first = quickCheck(db);
      if (first !== 'ok')
        throw new OpenRefusal(`is corrupt (quick_check: ${first}); restore it from a backup or move it away`);
    }
    if (!memory) db.pragma('journal_mode = WAL');
    setDurability(db, opts.durability ?? 'strict');
    db.pragma('foreign_keys = ON');
    migrate(db);
    return db;
  } catch (e) {
    db?.close();
    throw toDatabaseError(file, e, busyTimeoutMs);
  }
}

const MOVE_AWAY = 'point --db at another file or move it away';

/**
 * `PRAGMA quick_check(1)`'s first line. Several processes opening a new file together (a deployment's replicas, the
 * suite's workers) migrate it once between them; one of them can run its check while another's migration is
 * changing the schema, and SQLite then fails the check with SQLITE_SCHEMA or "vtable constructor failed" (the FTS
 * table). That is a moment, not a corrupt file: the check is tried again, for up to about 2 s.
 */
function quickCheck(db: Db): string {
  for (let attempt = 1; ; attempt++) {
    try {
      const rows = db.pragma('quick_check(1)') as { quick_check: string }[];
      return rows[0]?.quick_check ?? 'no result';
    } catch (e) {
      const code = String((e as { code?: unknown }).code ?? '');
      const transient =
        code.startsWith('SQLITE_SCHEMA') ||
        code.startsWith('SQLITE_BUSY') ||
        code.startsWith('SQLITE_LOCKED') ||
        /vtable constructor failed/.test(String((e as Error).message));
      if (!transient || attempt >= 80) throw e;
      Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 25);
    }
  }
}

/** One sentence per way a file can fail to open: what is wrong, which file, what to do. */
function toDatabaseError(file: string, e: unknown, busyTimeoutMs: number): DatabaseError {
  if (e instanceof DatabaseError) return e;
  const message = e instanceof Error ? e.message : String(e);
  const code = (e as { code?: unknown } | null)?.code;
  const c = typeof code === 'string' ? code : '';
  const detail = c && message.startsWith(`${c}: `) ? message.slice(c.length + 2) : message; // Node's errno messages start with the code
  const wait = busyTimeoutMs >= 1000 ? `${busyTimeoutMs / 1000} s` : `${busyTimeoutMs} ms`;
  // SQLite's result codes (and Node's errno codes from mkdir/stat), by prefix: SQLITE_BUSY also covers SQLITE_BUSY_SNAPSHOT.
  const reasons: [codes: string[], what: string][] = [
    [['SQLITE_NOTADB'], `is not an itguard database (file is not a SQLite database); ${MOVE_AWAY}`],
    [['SQLITE_CORRUPT'], `is corrupt (${message}); restore it from a backup or move it away`],
    [
      ['SQLITE_BUSY', 'SQLITE_LOCKED'],
      `is locked by another process (${c} after ${wait}); stop it or use another --db`,
    ],
    [
      ['SQLITE_CANTOPEN', 'SQLITE_READONLY', 'SQLITE_PERM', 'EACCES', 'EPERM', 'EISDIR', 'ENOTDIR', 'EROFS'],
      `cannot be opened for reading and writing (${message}); check the path and its permissions or use another --db`,
    ],
    [['SQLITE_FULL', 'ENOSPC'], `cannot be written: the disk is full (${message}); free space and retry`],
  ];
  const what =
    e instanceof OpenRefusal
      ? message
      : (reasons.find(([codes]) => codes.some((p) => c.startsWith(p)))?.[1] ??
        `cannot be opened (${c ? `${c}: ` : ''}${detail}); ${MOVE_AWAY}`);
  return new DatabaseError(file, `database ${file} ${what}`);
}

/** strict: every commit is fsynced (an audit intent is on disk before the side effect). fast: WAL's NORMAL. */
const durabilityOf = new WeakMap<Db, Durability>();

export function setDurability(db: Db, durability: Durability): void {
  db.pragma(`synchronous = ${durability === 'strict' ? 'FULL' : 'NORMAL'}`);
  durabilityOf.set(db, durability);
}

/**
 * A file is itguard's when it is empty (user_version 0, no tables: migrated from scratch) or has the `meta` table
 * migration 1 creates; anything else is another program's database. Read before WAL is switched on or anything is
 * written, so a foreign file is left exactly as it was. No transaction is needed: each migration step commits its
 * tables and its user_version together, so a process migrating the file at the same time is seen before or after a step.
 */
function checkIdentity(db: Db): void {
  const v = db.pragma('user_version', { simple: true }) as number;
  const tables = db
    .prepare("SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name")
    .pluck()
    .all() as string[];
  if (!tables.includes('meta') && (v !== 0 || tables.length > 0)) {
    const has = tables.length
      ? `tables ${tables.slice(0, 3).join(', ')}${tables.length > 3 ? ', ...' : ''}`
      : 'no tables';
    throw new OpenRefusal(
      `is not an itguard database (user_version ${v}, ${has}, no itguard meta table); point --db at another file or move it away`,
    );
  }
  newerCheck(v);
}

function newerCheck(v: number): void {
  if (v > migrations.length)
    throw new OpenRefusal(
      `was written by a newer itguard (schema ${v} > ${migrations.length}); upgrade itguard or point --db at another file`,
    );
}

/** Each step reads the version inside its IMMEDIATE transaction, so processes opening a new file together migrate it once. */
export function migrate(db: Db): void {
  for (;;) {
    const done = db
      .transaction(() => {
        const v = db.pragma('user_version', { simple: true }) as number;
        newerCheck(v);
        if (v === migrations.length) return true;
        db.exec(migrations[v]!);
        db.pragma(`user_version = ${v + 1}`);
        return false;
      })
      .immediate();
    if (done) return;
  }
}

/** Runs fn in a BEGIN IMMEDIATE transaction: the write lock is taken up front, so check-then-write is atomic across processes. */
export function immediate<T>(db: Db, fn: () => T): T {
  // Already inside a transaction (a unit's operations in the committer's batch, where each unit has a savepoint of
  // its own): that transaction makes fn atomic with the rest of its unit, and a savepoint per operation would only
  // cost (better-sqlite3 opens one for every nested transaction function, and builds the function anew each call).
  if (db.inTransaction) return fn();
  return db.transaction(fn).immediate();
}

/**
 * Runs fn without an fsync at commit (synchronous = NORMAL) when the connection is strict. Safe for state whose
 * durability before a side effect is carried by a later strict commit: WAL frames are appended in order, so the
 * audit intent's fsync also makes everything written before it durable. A process kill loses nothing either
 * way (the WAL is in the OS page cache); only a power loss could drop an unsynced tail.
 */
export function relaxed<T>(db: Db, fn: () => T): T {
  // Inside a transaction the outer one decides (SQLite cannot change the safety level there): a write queued in a
  // call's tail commits with the audit writer's batch.
  if (durabilityOf.get(db) !== 'strict' || db.inTransaction) return fn();
  // db.exec, not a statement prepared once: SQLite applies `PRAGMA synchronous = …` when the statement is compiled,
  // so re-running a prepared one changes nothing (test/store/relaxed.test.ts). exec compiles it each time (~1 µs).
  db.exec('PRAGMA synchronous = NORMAL');
  try {
    return fn();
  } finally {
    db.exec('PRAGMA synchronous = FULL');
  }
}

/**
 * Connections whose embedded backends' side effects are made durable by the audit (openApp marks its own). On such a
 * connection an effect's commit (`effectCommit`) is relaxed: the call's outcome record, committed strictly in the
 * audit writer's batch before the result is returned (`CallTail.strict`), fsyncs the WAL that holds the effect, so
 * one fsync serves the effects of every call in the batch. A connection nobody marked (a bare server, a tool used
 * outside the pipeline) commits each effect strictly, on its own.
 */
const effectsCarried = new WeakSet<Db>();

export function carryEffectsByAudit(db: Db): void {
  effectsCarried.add(db);
}

/** Runs an embedded backend's side-effect transaction: relaxed where the audit carries its durability (above). */
export function effectCommit<T>(db: Db, fn: () => T): T {
  return effectsCarried.has(db) ? relaxed(db, fn) : fn();
}
