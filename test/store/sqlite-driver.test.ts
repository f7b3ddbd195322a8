/**
 * The SQLite driver choice (db.ts sqliteDriver) and driver-node.ts's better-sqlite3 semantics on node:sqlite. The
 * adapter's own tests run where node:sqlite can serve itguard (Node >= 24); on Node 20 and 22 they are skipped, and
 * `ITGUARD_SQLITE_DRIVER=node` runs the store suites on it (README, Node versions).
 */
import { describe, expect, it } from 'vitest';
import { NodeSqliteDb, resultCodeName } from '../../src/store/sqlite/driver-node.js';
import { sqliteDriver } from '../../src/store/sqlite/db.js';

describe('sqliteDriver', () => {
  it('is node:sqlite from Node 24, better-sqlite3 below, and ITGUARD_SQLITE_DRIVER overrides both', () => {
    expect(sqliteDriver({}, '20.20.2')).toBe('better-sqlite3');
    expect(sqliteDriver({}, '22.23.3')).toBe('better-sqlite3');
    expect(sqliteDriver({}, '24.21.0')).toBe('node');
    expect(sqliteDriver({}, '25.0.0')).toBe('node');
    expect(sqliteDriver({ ITGUARD_SQLITE_DRIVER: 'node' }, '22.23.3')).toBe('node');
    expect(sqliteDriver({ ITGUARD_SQLITE_DRIVER: 'better-sqlite3' }, '24.21.0')).toBe('better-sqlite3');
    expect(sqliteDriver({ ITGUARD_SQLITE_DRIVER: '' }, '24.21.0')).toBe('node');
    expect(() => sqliteDriver({ ITGUARD_SQLITE_DRIVER: 'sqlite3' }, '24.21.0')).toThrow(/not a SQLite driver/);
  });

  it("names SQLite's result codes as better-sqlite3 does", () => {
    expect(resultCodeName(5)).toBe('SQLITE_BUSY');
    expect(resultCodeName(517)).toBe('SQLITE_BUSY_SNAPSHOT');
    expect(resultCodeName(2067)).toBe('SQLITE_CONSTRAINT_UNIQUE');
    expect(resultCodeName(1555)).toBe('SQLITE_CONSTRAINT_PRIMARYKEY');
    expect(resultCodeName(26)).toBe('SQLITE_NOTADB');
    expect(resultCodeName(8714)).toBe('SQLITE_IOERR_IN_PAGE');
  });
});

const nodeSqlite = Number(process.versions.node.split('.')[0]) >= 24;

describe.skipIf(!nodeSqlite)('driver-node (node:sqlite)', () => {
  const open = () => {
    const db = new NodeSqliteDb(':memory:');
    db.exec('CREATE TABLE t (id INTEGER PRIMARY KEY, k TEXT UNIQUE, n INTEGER)');
    return db;
  };
  const keys = (db: NodeSqliteDb) => db.prepare('SELECT k FROM t ORDER BY id').pluck().all();

  it('runs statements with named and positional parameters, pluck, iterate and run results', () => {
    const db = open();
    const ins = db.prepare('INSERT INTO t (k, n) VALUES (@k, @n)');
    expect(ins.run({ k: 'a', n: 1, unused: 'ignored' })).toEqual({ changes: 1, lastInsertRowid: 1 });
    db.prepare('INSERT INTO t (k, n) VALUES (?, ?)').run('b\u0000c', 2);
    db.prepare('INSERT INTO t (k, n) VALUES (?, ?)').run(['d', 3]);
    expect(keys(db)).toEqual(['a', 'b\u0000c', 'd']);
    expect(db.prepare('SELECT n FROM t WHERE k = ?').pluck().get('b\u0000c')).toBe(2);
    expect(db.prepare('SELECT n FROM t WHERE k = ?').get('zz')).toBeUndefined();
    // undefined binds NULL, as in better-sqlite3 (positional and named).
    expect(db.prepare('SELECT ? AS a, @b AS b').get(undefined, { b: undefined })).toEqual({ a: null, b: null });
    expect(db.prepare('SELECT k FROM t WHERE k = ?').all(undefined)).toEqual([]);
    expect([...db.prepare<[number], { k: string }>('SELECT k FROM t WHERE n > ? ORDER BY n').iterate(1)]).toEqual([
      { k: 'b\u0000c' },
      { k: 'd' },
    ]);
    expect([...db.prepare('SELECT n FROM t ORDER BY n').pluck().iterate()]).toEqual([1, 2, 3]);
    expect(db.pragma('user_version', { simple: true })).toBe(0);
    expect(db.pragma('table_info(t)')).toHaveLength(3);
    db.close();
    db.close(); // a second close does nothing, as in better-sqlite3
  });

  it('gives SQLite errors better-sqlite3 codes', () => {
    const db = open();
    db.prepare('INSERT INTO t (k) VALUES (?)').run('a');
    expect(() => db.prepare('INSERT INTO t (k) VALUES (?)').run('a')).toThrow(
      expect.objectContaining({ code: 'SQLITE_CONSTRAINT_UNIQUE', message: 'UNIQUE constraint failed: t.k' }),
    );
    expect(() => db.prepare('SELECT nope FROM t')).toThrow(expect.objectContaining({ code: 'SQLITE_ERROR' }));
  });

  it('transactions: BEGIN variants, commit, rollback on throw, savepoints when nested, no promises', () => {
    const db = open();
    const ins = db.prepare('INSERT INTO t (k) VALUES (?)');
    const add = db.transaction((...ks: string[]) => {
      for (const k of ks) ins.run(k);
      return db.inTransaction;
    });
    expect(add.immediate('a', 'b')).toBe(true);
    expect(db.inTransaction).toBe(false);
    expect(add.deferred('c')).toBe(true);
    expect(add.exclusive('d')).toBe(true);
    expect(add('e')).toBe(true);
    expect(() => add('f', 'a')).toThrow(/UNIQUE/);
    expect(db.inTransaction).toBe(false);
    expect(keys(db)).toEqual(['a', 'b', 'c', 'd', 'e']);

    // Nested: the inner transaction is a savepoint; its failure rolls back only its own writes.
    const outer = db.transaction(() => {
      ins.run('g');
      expect(() => add.immediate('h', 'a')).toThrow(/UNIQUE/);
      expect(db.inTransaction).toBe(true);
      add('i');
    });
    outer.immediate();
    expect(keys(db)).toEqual(['a', 'b', 'c', 'd', 'e', 'g', 'i']);
    // An outer throw rolls back the inner, released savepoint too.
    expect(() =>
      db.transaction(() => {
        add('j');
        throw new Error('no');
      })(),
    ).toThrow('no');
    expect(keys(db)).toEqual(['a', 'b', 'c', 'd', 'e', 'g', 'i']);
    expect(() => db.transaction(async () => undefined)()).toThrow(/cannot return a promise/);
    expect(db.inTransaction).toBe(false);
  });

  it('has FTS5 with bm25', () => {
    const db = open();
    expect(db.prepare("SELECT sqlite_compileoption_used('ENABLE_FTS5')").pluck().get()).toBe(1);
    db.exec("CREATE VIRTUAL TABLE f USING fts5(body); INSERT INTO f VALUES ('vpn keeps disconnecting'), ('printer')");
    expect(db.prepare('SELECT body FROM f WHERE f MATCH ? ORDER BY bm25(f)').pluck().all('vpn')).toEqual([
      'vpn keeps disconnecting',
    ]);
  });
});
