/**
 * The SQLite connection as the store uses it: the subset of better-sqlite3's API that src/store/sqlite/,
 * src/tools/*\/embedded.ts, src/tools/kb/ and src/demo/ call, as a structural interface. better-sqlite3's
 * `Database` satisfies it as is; driver-node.ts implements it on Node's built-in `node:sqlite` (db.ts picks one).
 */

export interface RunResult {
  changes: number;
  lastInsertRowid: number | bigint;
}

/** A prepared statement: better-sqlite3's `Statement` methods the store calls. */
export interface SqliteStatement<P extends unknown[] = unknown[], R = unknown> {
  run(...params: P): RunResult;
  get(...params: P): R | undefined;
  all(...params: P): R[];
  iterate(...params: P): IterableIterator<R>;
  /** Rows as their first column's value (mutates and returns the statement, as better-sqlite3 does). */
  pluck(toggleState?: boolean): this;
}

// eslint-disable-next-line @typescript-eslint/no-explicit-any -- better-sqlite3's own signature
export type VariableArgFunction = (...args: any[]) => unknown;
type ArgumentTypes<F extends VariableArgFunction> = F extends (...args: infer A) => unknown ? A : never;

/** A transaction function: called directly it runs `BEGIN` (deferred); nested in a transaction, a SAVEPOINT. */
export interface SqliteTransaction<F extends VariableArgFunction> {
  (...args: ArgumentTypes<F>): ReturnType<F>;
  default(...args: ArgumentTypes<F>): ReturnType<F>;
  deferred(...args: ArgumentTypes<F>): ReturnType<F>;
  immediate(...args: ArgumentTypes<F>): ReturnType<F>;
  exclusive(...args: ArgumentTypes<F>): ReturnType<F>;
}

export interface SqliteDb {
  readonly inTransaction: boolean;
  // eslint-disable-next-line @typescript-eslint/no-empty-object-type -- better-sqlite3's own signature
  prepare<P extends unknown[] | {} = unknown[], R = unknown>(
    source: string,
  ): P extends unknown[] ? SqliteStatement<P, R> : SqliteStatement<[P], R>;
  transaction<F extends VariableArgFunction>(fn: F): SqliteTransaction<F>;
  exec(source: string): this;
  pragma(source: string, options?: { simple?: boolean }): unknown;
  close(): this;
}
