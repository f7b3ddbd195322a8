/**
 * The `meta` table: small facts about the database file itself, one text value per key (e.g. `demo_seeded`,
 * when the demo data was written). Its presence is also what marks a file as itguard's (see db.ts).
 */
import type { Db } from './db.js';

export class MetaStore {
  constructor(private readonly db: Db) {}

  /** The value stored under `key`, or undefined when the key was never set. */
  get(key: string): string | undefined {
    return this.db.prepare<[string], { value: string }>('SELECT value FROM meta WHERE key = ?').get(key)?.value;
  }

  /** Stores `value` under `key`, replacing any earlier value. */
  set(key: string, value: string): void {
    this.db
      .prepare('INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value')
      .run(key, value);
  }
}
