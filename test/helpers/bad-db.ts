/** Database files itguard must refuse at open: each writes `file` and returns it. */
import {
  closeSync,
  copyFileSync,
  openSync,
  readFileSync,
  statSync,
  truncateSync,
  writeFileSync,
  writeSync,
} from 'node:fs';
import { randomBytes } from 'node:crypto';
import { AuditStore } from '../../src/store/sqlite/audit-store.js';
import { connect, openDb } from '../../src/store/sqlite/db.js';

/** A real itguard database with `rows` audit records (~0.6 KB each), closed so its WAL is checkpointed into the file. */
export function realDb(file: string, rows: number): string {
  const db = openDb(file);
  const audit = new AuditStore(db, undefined);
  const pad = 'x'.repeat(400);
  db.transaction(() => {
    for (let i = 0; i < rows; i++) audit.append({ event: 'test', actor: 'a', detail: { i, pad } });
  })();
  db.close();
  return file;
}

export function noiseDb(file: string): string {
  writeFileSync(file, randomBytes(64 * 1024));
  return file;
}

/** A copy of a real database cut to half its length. */
export function truncatedDb(file: string): string {
  realDb(`${file}.whole`, 2000);
  copyFileSync(`${file}.whole`, file);
  truncateSync(file, Math.floor(statSync(file).size / 2));
  return file;
}

/** Another program's SQLite database: user_version 0, a table foo, no itguard meta table. */
export function foreignDb(file: string): string {
  const raw = connect(file);
  raw.exec("CREATE TABLE foo (a); INSERT INTO foo VALUES ('bar')");
  raw.close();
  return file;
}

/** What a newer itguard would leave: the meta table, user_version 999. */
export function futureDb(file: string): string {
  const raw = connect(file);
  raw.exec('CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)');
  raw.pragma('user_version = 999');
  raw.close();
  return file;
}

/** A real database of 2,000 audit rows with random bytes written over the page in the middle of the file. */
export function midCorruptDb(file: string): string {
  realDb(file, 2000);
  const pageSize = readFileSync(file).subarray(0, 100).readUInt16BE(16);
  const pages = statSync(file).size / pageSize;
  if (pages < 100) throw new Error(`expected a bigger database, got ${pages} pages`);
  const fd = openSync(file, 'r+');
  writeSync(fd, randomBytes(pageSize), 0, pageSize, Math.floor(pages / 2) * pageSize);
  closeSync(fd);
  return file;
}
