/**
 * The store's SQLite connection (driver.ts's `SqliteDb`) on Node's built-in `node:sqlite` (`DatabaseSync`), with
 * better-sqlite3's semantics for the part of its API the store uses, so every store module runs unchanged on either:
 * - `transaction(fn)` gives a function that runs fn between `BEGIN` (`.deferred()`, `.immediate()`, `.exclusive()`)
 *   and `COMMIT`, or, called inside a transaction, between `SAVEPOINT` and `RELEASE`; a throw rolls back (to the
 *   savepoint) and is rethrown; fn may not return a promise.
 * - statements: `run` (`{ changes, lastInsertRowid }`), `get`, `all`, `iterate`, `pluck()`; named parameters as an
 *   object whose keys have no prefix (`@name` in the SQL; keys the statement does not use are ignored) and positional `?`.
 * - `pragma(text, { simple })`, `exec`, `inTransaction`, `close` (a second close does nothing).
 * - errors from SQLite carry better-sqlite3's `code`, the extended result code's name (`SQLITE_BUSY`,
 *   `SQLITE_CONSTRAINT_UNIQUE`, ...), where `node:sqlite` says `ERR_SQLITE_ERROR` and a number.
 * Rows are node:sqlite's own (objects with a null prototype). db.ts uses this on Node >= 24, where better-sqlite3 12
 * aborts the process (README, Node versions). `node:sqlite` is loaded when a connection is opened, never at import,
 * so Node 20 (which has no `node:sqlite`) never touches it.
 */
import { createRequire } from 'node:module';
import type { DatabaseSync, NodeSqliteModule, StatementSync } from './node-sqlite.js';
import type { RunResult, SqliteDb, SqliteStatement, SqliteTransaction, VariableArgFunction } from './driver.js';

let sqlite: NodeSqliteModule | undefined;
function load(): NodeSqliteModule {
  return (sqlite ??= createRequire(import.meta.url)('node:sqlite') as NodeSqliteModule);
}

/** An error from SQLite, as better-sqlite3 reports it: SQLite's message, and `code` its result code's name. */
export class SqliteError extends Error {
  override readonly name = 'SqliteError';
  constructor(
    message: string,
    readonly code: string,
    options?: { cause: unknown },
  ) {
    super(message, options);
  }
}

// SQLite's result codes: the primary ones, and each one's extended codes (primary | n << 8, n from 1) in order.
const PRIMARY = [
  'OK', 'ERROR', 'INTERNAL', 'PERM', 'ABORT', 'BUSY', 'LOCKED', 'NOMEM', 'READONLY', 'INTERRUPT', 'IOERR', 'CORRUPT',
  'NOTFOUND', 'FULL', 'CANTOPEN', 'PROTOCOL', 'EMPTY', 'SCHEMA', 'TOOBIG', 'CONSTRAINT', 'MISMATCH', 'MISUSE',
  'NOLFS', 'AUTH', 'FORMAT', 'RANGE', 'NOTADB', 'NOTICE', 'WARNING',
]; // prettier-ignore
const EXTENDED: Record<string, string[]> = {
  OK: ['LOAD_PERMANENTLY', 'SYMLINK'],
  ERROR: ['MISSING_COLLSEQ', 'RETRY', 'SNAPSHOT'],
  IOERR: [
    'READ', 'SHORT_READ', 'WRITE', 'FSYNC', 'DIR_FSYNC', 'TRUNCATE', 'FSTAT', 'UNLOCK', 'RDLOCK', 'DELETE',
    'BLOCKED', 'NOMEM', 'ACCESS', 'CHECKRESERVEDLOCK', 'LOCK', 'CLOSE', 'DIR_CLOSE', 'SHMOPEN', 'SHMSIZE',
    'SHMLOCK', 'SHMMAP', 'SEEK', 'DELETE_NOENT', 'MMAP', 'GETTEMPPATH', 'CONVPATH', 'VNODE', 'AUTH',
    'BEGIN_ATOMIC', 'COMMIT_ATOMIC', 'ROLLBACK_ATOMIC', 'DATA', 'CORRUPTFS', 'IN_PAGE',
  ], // prettier-ignore
  LOCKED: ['SHAREDCACHE', 'VTAB'],
  BUSY: ['RECOVERY', 'SNAPSHOT', 'TIMEOUT'],
  CANTOPEN: ['NOTEMPDIR', 'ISDIR', 'FULLPATH', 'CONVPATH', 'DIRTYWAL', 'SYMLINK'],
  CORRUPT: ['VTAB', 'SEQUENCE', 'INDEX'],
  READONLY: ['RECOVERY', 'CANTLOCK', 'ROLLBACK', 'DBMOVED', 'CANTINIT', 'DIRECTORY'],
  ABORT: ['ROLLBACK'],
  CONSTRAINT: [
    'CHECK', 'COMMITHOOK', 'FOREIGNKEY', 'FUNCTION', 'NOTNULL', 'PRIMARYKEY', 'TRIGGER', 'UNIQUE', 'VTAB', 'ROWID',
    'PINNED', 'DATATYPE',
  ], // prettier-ignore
  NOTICE: ['RECOVER_WAL', 'RECOVER_ROLLBACK', 'RBU'],
  WARNING: ['AUTOINDEX'],
  AUTH: ['USER'],
};

/** `SQLITE_BUSY_SNAPSHOT` for 517: the name better-sqlite3 gives an extended result code. */
export function resultCodeName(code: number): string {
  const primary = PRIMARY[code & 0xff];
  if (primary === undefined) return `SQLITE_UNKNOWN_${code}`;
  const ext = code >> 8;
  if (ext === 0) return `SQLITE_${primary}`;
  const name = EXTENDED[primary]?.[ext - 1];
  return name ? `SQLITE_${primary}_${name}` : `SQLITE_UNKNOWN_${code}`;
}

/** node:sqlite's error for a SQLite result code (`ERR_SQLITE_ERROR`, `errcode`) as better-sqlite3's; others as they are. */
function translate(e: unknown): unknown {
  const err = e as { code?: unknown; errcode?: unknown; message?: unknown } | null;
  if (err && err.code === 'ERR_SQLITE_ERROR' && typeof err.errcode === 'number')
    return new SqliteError(String(err.message), resultCodeName(err.errcode), { cause: e });
  return e;
}

/**
 * Parameters as better-sqlite3 takes them, for node:sqlite: an array is a list of parameters (`run([a, b])` is
 * `run(a, b)`), the object of named parameters may come anywhere, and `undefined`, positional or as a named parameter's value, binds NULL (node:sqlite throws on it).
 */
function flat(params: unknown[]): unknown[] {
  let list = params.some(Array.isArray) ? params.flat() : params;
  // The named parameters' object may come anywhere in better-sqlite3; node:sqlite takes it first.
  const at = list.length > 1 ? list.findIndex(isNamed) : -1;
  if (at > 0) list = [list[at], ...list.slice(0, at), ...list.slice(at + 1)];
  if (!list.some((p) => p === undefined || (isNamed(p) && Object.values(p).includes(undefined)))) return list;
  return list.map((p) =>
    p === undefined
      ? null
      : isNamed(p)
        ? Object.fromEntries(Object.entries(p).map(([k, v]) => [k, v === undefined ? null : v]))
        : p,
  );
}

const isNamed = (p: unknown): p is Record<string, unknown> =>
  typeof p === 'object' && p !== null && !ArrayBuffer.isView(p);

class NodeStatement<P extends unknown[] = unknown[], R = unknown> implements SqliteStatement<P, R> {
  private plucked = false;
  private readonly arrays: boolean;
  constructor(private readonly raw: StatementSync) {
    // better-sqlite3 ignores keys of a parameter object the statement does not name; node:sqlite throws by default.
    raw.setAllowUnknownNamedParameters?.(true);
    this.arrays = typeof raw.setReturnArrays === 'function';
  }

  pluck(toggleState = true): this {
    this.plucked = toggleState;
    if (this.arrays) this.raw.setReturnArrays!(toggleState);
    return this;
  }

  private first(row: unknown): unknown {
    if (row === undefined) return undefined;
    return this.arrays ? (row as unknown[])[0] : Object.values(row as object)[0];
  }

  run(...params: P): RunResult {
    try {
      // changes is a number unless the statement reads BigInts (setReadBigInts, never called here).
      return this.raw.run(...flat(params)) as RunResult;
    } catch (e) {
      throw translate(e);
    }
  }

  get(...params: P): R | undefined {
    try {
      const row = this.raw.get(...flat(params));
      return (this.plucked ? this.first(row) : row) as R | undefined;
    } catch (e) {
      throw translate(e);
    }
  }

  all(...params: P): R[] {
    try {
      const rows = this.raw.all(...flat(params));
      return (this.plucked ? rows.map((r) => this.first(r)) : rows) as R[];
    } catch (e) {
      throw translate(e);
    }
  }

  *iterate(...params: P): IterableIterator<R> {
    let it: IterableIterator<unknown>;
    try {
      it = this.raw.iterate(...flat(params));
    } catch (e) {
      throw translate(e);
    }
    const plucked = this.plucked;
    for (;;) {
      let next: IteratorResult<unknown>;
      try {
        next = it.next();
      } catch (e) {
        throw translate(e);
      }
      if (next.done) return;
      yield (plucked ? this.first(next.value) : next.value) as R;
    }
  }
}

const SAVEPOINT = '`\t_bs3.`'; // better-sqlite3's savepoint name

export class NodeSqliteDb implements SqliteDb {
  private readonly raw: DatabaseSync;
  private readonly control: Record<string, StatementSync> = {};

  constructor(file: string, opts: { timeout?: number } = {}) {
    const { DatabaseSync } = load();
    try {
      // better-sqlite3 is built with double-quoted string literals off (SQLITE_DQS=0), as node:sqlite's default is.
      this.raw = new DatabaseSync(file, { timeout: opts.timeout ?? 5000, enableDoubleQuotedStringLiterals: false });
    } catch (e) {
      throw translate(e);
    }
    // Two things an older node:sqlite lacks, checked at open so they cannot surface as wrong data later: the
    // transaction state (DatabaseSync.isTransaction, Node >= 22.16), and text with a NUL character, which the store's
    // keys contain (task keys join principal, source and id with U+0000): Node 22's node:sqlite cuts a bound or read
    // string at its first NUL, so two tasks of one principal would share a row. Node 24's keeps the whole string.
    let unusable: string | undefined;
    try {
      unusable =
        typeof this.raw.isTransaction !== 'boolean'
          ? 'has no DatabaseSync.isTransaction'
          : (this.raw.prepare('SELECT ? AS v').get('a\u0000b') as { v?: unknown }).v !== 'a\u0000b'
            ? 'cuts text at a NUL character'
            : undefined;
    } catch (e) {
      this.raw.close(); // a file that is not a database fails here (SQLITE_NOTADB), as it would at the first query
      throw translate(e);
    }
    if (unusable) {
      this.raw.close();
      throw new Error(
        `node:sqlite of Node ${process.versions.node} ${unusable}, so itguard cannot use it (Node >= 24 can); use better-sqlite3 (unset ITGUARD_SQLITE_DRIVER)`,
      );
    }
  }

  get inTransaction(): boolean {
    return this.raw.isTransaction === true;
  }

  // eslint-disable-next-line @typescript-eslint/no-empty-object-type -- better-sqlite3's own signature
  prepare<P extends unknown[] | {} = unknown[], R = unknown>(
    source: string,
  ): P extends unknown[] ? SqliteStatement<P, R> : SqliteStatement<[P], R> {
    try {
      return new NodeStatement(this.raw.prepare(source)) as never;
    } catch (e) {
      throw translate(e);
    }
  }

  exec(source: string): this {
    try {
      this.raw.exec(source);
    } catch (e) {
      throw translate(e);
    }
    return this;
  }

  pragma(source: string, options: { simple?: boolean } = {}): unknown {
    const stmt = this.prepare(`PRAGMA ${source}`);
    return options.simple ? stmt.pluck().get() : stmt.all();
  }

  close(): this {
    if (this.raw.isOpen !== false) this.raw.close();
    return this;
  }

  /** A control statement (BEGIN, COMMIT, SAVEPOINT, ...), prepared once per connection. */
  private run(sql: string): void {
    try {
      (this.control[sql] ??= this.raw.prepare(sql)).run();
    } catch (e) {
      throw translate(e);
    }
  }

  transaction<F extends VariableArgFunction>(fn: F): SqliteTransaction<F> {
    if (typeof fn !== 'function') throw new TypeError('Expected first argument to be a function');
    // eslint-disable-next-line @typescript-eslint/no-this-alias
    const db = this;
    const variant = (begin: string) =>
      // A function, not an arrow: `this` passes through to fn, as better-sqlite3's does.
      // eslint-disable-next-line @typescript-eslint/no-explicit-any
      function (this: unknown, ...args: any[]): ReturnType<F> {
        const nested = db.inTransaction;
        db.run(nested ? `SAVEPOINT ${SAVEPOINT}` : begin);
        try {
          const result = fn.apply(this, args) as ReturnType<F>;
          if (result && typeof (result as { then?: unknown }).then === 'function')
            throw new TypeError('Transaction function cannot return a promise');
          db.run(nested ? `RELEASE ${SAVEPOINT}` : 'COMMIT');
          return result;
        } catch (e) {
          if (db.inTransaction) {
            if (nested) {
              db.run(`ROLLBACK TO ${SAVEPOINT}`);
              db.run(`RELEASE ${SAVEPOINT}`);
            } else db.run('ROLLBACK');
          }
          throw e;
        }
      };
    return Object.assign(variant('BEGIN'), {
      default: variant('BEGIN'),
      deferred: variant('BEGIN DEFERRED'),
      immediate: variant('BEGIN IMMEDIATE'),
      exclusive: variant('BEGIN EXCLUSIVE'),
    }) as SqliteTransaction<F>;
  }
}
