/** relaxed(): the commit inside runs at synchronous = NORMAL, and the connection is back at FULL after it. */
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { immediate, openDb, relaxed } from '../../src/store/sqlite/db.js';
import { tempDir } from '../helpers/harness.js';

describe('relaxed', () => {
  it('lowers the safety level for what it runs, every time, and restores FULL (also when fn throws)', () => {
    const { dir, cleanup } = tempDir();
    try {
      const db = openDb(join(dir, 'r.db'));
      const sync = () => db.pragma('synchronous', { simple: true }) as number;
      // More than once: a PRAGMA prepared once and re-run would apply only when it was compiled.
      for (let i = 0; i < 3; i++) {
        expect(relaxed(db, sync)).toBe(1);
        expect(sync()).toBe(2);
      }
      expect(() =>
        relaxed(db, () => {
          throw new Error('boom');
        }),
      ).toThrow('boom');
      expect(sync()).toBe(2);
      // Inside a transaction the outer one decides (SQLite refuses to change the level there).
      expect(immediate(db, () => relaxed(db, sync))).toBe(2);
      db.close();
      const fast = openDb(join(dir, 'f.db'), { durability: 'fast' });
      expect(relaxed(fast, () => fast.pragma('synchronous', { simple: true }))).toBe(1);
      fast.close();
    } finally {
      cleanup();
    }
  });
});
