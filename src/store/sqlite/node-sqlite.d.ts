/**
 * The part of Node's built-in `node:sqlite` (Node >= 22.5; `isTransaction` and `setReturnArrays` from 22.16 / 24)
 * that driver-node.ts uses. Declared here because @types/node is 20.x; driver-node.ts loads the module at run time
 * with createRequire, so these are plain types and nothing imports `node:sqlite` statically.
 */
export type SQLInputValue = null | number | bigint | string | Uint8Array;

export interface StatementResultingChanges {
  changes: number | bigint;
  lastInsertRowid: number | bigint;
}

export interface StatementSync {
  run(...params: unknown[]): StatementResultingChanges;
  get(...params: unknown[]): unknown;
  all(...params: unknown[]): unknown[];
  iterate(...params: unknown[]): IterableIterator<unknown>;
  setAllowUnknownNamedParameters?(enabled: boolean): void;
  setReturnArrays?(enabled: boolean): void;
}

export interface DatabaseSyncOptions {
  open?: boolean;
  readOnly?: boolean;
  enableForeignKeyConstraints?: boolean;
  enableDoubleQuotedStringLiterals?: boolean;
  timeout?: number;
}

export interface DatabaseSync {
  readonly isOpen?: boolean;
  readonly isTransaction?: boolean;
  prepare(sql: string): StatementSync;
  exec(sql: string): void;
  close(): void;
}

export interface NodeSqliteModule {
  DatabaseSync: new (location: string, options?: DatabaseSyncOptions) => DatabaseSync;
}
