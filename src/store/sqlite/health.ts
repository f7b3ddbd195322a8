/** The SQLite store's answer to `/healthz` (app.ts `storeHealth`). */
import { statSync } from 'node:fs';
import type { Db } from './db.js';

export interface SqliteHealth {
  kind: 'sqlite';
  ok: boolean;
  detail?: string;
}

/**
 * `/healthz` on SQLite: the file this process opened is still there and the same (device and inode: an open
 * connection keeps reading an unlinked file, which would otherwise look healthy), and a read of it succeeds within
 * the busy timeout. Never rejects.
 */
export function sqliteHealth(db: Db, dbPath: string): () => Promise<SqliteHealth> {
  const opened = dbPath === ':memory:' ? undefined : statSync(dbPath, { throwIfNoEntry: false });
  const schemaRead = db.prepare('SELECT count(*) FROM sqlite_master');
  return async () => {
    try {
      if (opened) {
        const now = statSync(dbPath, { throwIfNoEntry: false });
        if (!now) return { kind: 'sqlite', ok: false, detail: 'the database file is gone' };
        if (now.ino !== opened.ino || now.dev !== opened.dev)
          return { kind: 'sqlite', ok: false, detail: 'the database file was replaced since this process opened it' };
      }
      schemaRead.get();
      return { kind: 'sqlite', ok: true };
    } catch (e) {
      return { kind: 'sqlite', ok: false, detail: e instanceof Error ? e.message : String(e) };
    }
  };
}
