/**
 * The `meta` table on PostgreSQL: small facts about the database itself, one text value per key (`demo_seeded`,
 * the MRTR state key, the audit key's fingerprint), as store/sqlite/meta-store.ts.
 */
import { attempt } from './attempt.js';
import type { PgStore } from './connect.js';

export class PgMeta {
  constructor(private readonly pg: PgStore) {}

  /** The value stored under `key`, or undefined when the key was never set. */
  async get(key: string): Promise<string | undefined> {
    const [r] = await attempt(
      this.pg,
      () => this.pg.sql<{ value: string }[]>`SELECT value FROM meta WHERE key = ${key}`,
    );
    return r?.value;
  }

  /** Stores `value` under `key`, replacing any earlier value. */
  async set(key: string, value: string): Promise<void> {
    await attempt(
      this.pg,
      () => this.pg.sql`
        INSERT INTO meta (key, value) VALUES (${key}, ${value}) ON CONFLICT (key) DO UPDATE SET value = excluded.value`,
    );
  }

  /** Stores `value` under `key` unless a value is there already; returns the value that is there now (first wins). */
  async setIfAbsent(key: string, value: string): Promise<string> {
    return attempt(this.pg, async () => {
      const [r] = await this.pg.sql<{ value: string }[]>`
        INSERT INTO meta (key, value) VALUES (${key}, ${value}) ON CONFLICT (key) DO NOTHING RETURNING value`;
      if (r) return r.value;
      const [prior] = await this.pg.sql<{ value: string }[]>`SELECT value FROM meta WHERE key = ${key}`;
      return prior!.value;
    });
  }
}
