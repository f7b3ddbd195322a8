/**
 * Opens the one SQLite file itguard keeps its state in: WAL, busy_timeout, durability, and schema
 * migrations keyed by `PRAGMA user_version`. Every other store module receives the `Db` this returns.
 */
import Database from 'better-sqlite3';
import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import { migrations } from './migrations.js';

export type Db = Database.Database;
export type Durability = 'strict' | 'fast';

export interface OpenOptions {
  durability?: Durability;
  /** How long a writer waits for another process's lock before SQLITE_BUSY (ms). */
  busyTimeoutMs?: number;
}

export function openDb(file: string, opts: OpenOptions = {}): Db {
  if (file !== ':memory:') mkdirSync(dirname(file), { recursive: true });
  const db = new Database(file);
  db.pragma(`busy_timeout = ${opts.busyTimeoutMs ?? 5000}`);
  if (file !== ':memory:') db.pragma('journal_mode = WAL');
  setDurability(db, opts.durability ?? 'strict');
  db.pragma('foreign_keys = ON');
  migrate(db);
  return db;
}

/** strict: every commit is fsynced (an audit intent is on disk before the side effect). fast: WAL's NORMAL. */
const durabilityOf = new WeakMap<Db, Durability>();

export function setDurability(db: Db, durability: Durability): void {
  db.pragma(`synchronous = ${durability === 'strict' ? 'FULL' : 'NORMAL'}`);
  durabilityOf.set(db, durability);
}

/** Each step reads the version inside its IMMEDIATE transaction, so processes opening a new file together migrate it once. */
export function migrate(db: Db): void {
  for (;;) {
    const done = db
      .transaction(() => {
        const v = db.pragma('user_version', { simple: true }) as number;
        if (v > migrations.length) throw new Error(`database schema version ${v} is newer than this itguard (${migrations.length})`);
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
  return db.transaction(fn).immediate();
}

/**
 * Runs fn without an fsync at commit (synchronous = NORMAL) when the connection is strict. Safe for state whose
 * durability before a side effect is carried by a later strict commit: WAL frames are appended in order, so the
 * audit intent's fsync also makes everything written before it durable. A process kill loses nothing either
 * way (the WAL is in the OS page cache); only a power loss could drop an unsynced tail.
 */
export function relaxed<T>(db: Db, fn: () => T): T {
  if (durabilityOf.get(db) !== 'strict') return fn();
  db.pragma('synchronous = NORMAL');
  try {
    return fn();
  } finally {
    db.pragma('synchronous = FULL');
  }
}
