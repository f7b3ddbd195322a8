/**
 * A call is two units of work (DESIGN §5, §9): a guarded write costs two store transactions besides its effect —
 * the admission (budget admit, idempotency begin, cap reservations, intent) and the settlement (outcome,
 * idempotency finish, budget settle) — and a read or a refused call costs no more. Counted where it cannot be
 * faked: the commit frames SQLite appends to the write-ahead log, one per committed transaction of any kind.
 */
import { openSync, readSync, closeSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { SqliteApp as App } from '../../src/app.js';
import { codeOf, connect, tempDir, testApp } from '../helpers/harness.js';

/** The commit frames in a WAL file (frame header bytes 4..8 hold the database size after a commit, else 0). */
function walCommits(file: string): number {
  let size: number;
  try {
    size = statSync(file).size;
  } catch {
    return 0;
  }
  if (size < 32) return 0;
  const fd = openSync(file, 'r');
  try {
    const head = Buffer.alloc(32);
    readSync(fd, head, 0, 32, 0);
    const pageSize = head.readUInt32BE(8);
    const salt = [head.readUInt32BE(16), head.readUInt32BE(20)];
    const frame = Buffer.alloc(24);
    let commits = 0;
    for (let off = 32; off + 24 + pageSize <= size; off += 24 + pageSize) {
      readSync(fd, frame, 0, 24, off);
      if (frame.readUInt32BE(8) !== salt[0] || frame.readUInt32BE(12) !== salt[1]) break; // a frame of an older generation
      if (frame.readUInt32BE(4) !== 0) commits++;
    }
    return commits;
  } finally {
    closeSync(fd);
  }
}

describe('two units of work per call', () => {
  const { dir, cleanup } = tempDir();
  let app: App;
  let c: Awaited<ReturnType<typeof connect>>;
  const wal = () => join(dir, 'units.db-wal');
  /** Transactions committed while `fn` ran. */
  async function transactions(fn: () => Promise<unknown>): Promise<number> {
    app.sqlite.db.pragma('wal_checkpoint(TRUNCATE)');
    expect(walCommits(wal())).toBe(0);
    await fn();
    return walCommits(wal());
  }

  beforeAll(async () => {
    app = testApp({ dbPath: join(dir, 'units.db') });
    app.sqlite.db.pragma('wal_autocheckpoint = 0');
    c = await connect(app);
    // Warm-up: the once-a-minute sweeps of tasks and idempotency records run on the first calls.
    await c.call('kb_search', { query: 'vpn warm-up' });
    await c.call('ticket_create', { summary: 'warm-up', requester: 'jdoe', reason: 'warm-up' });
  });
  afterAll(async () => {
    await c.close();
    app.close();
    cleanup();
  });

  it('a guarded write: admission + its effect + settlement = three commits, of which two are the store’s', async () => {
    const n = await transactions(async () => {
      const r = await c.call('ticket_create', { summary: 'printer jam', requester: 'jdoe', reason: 'user asked' });
      expect(r.isError).toBeFalsy();
    });
    expect(n).toBe(3); // the embedded tickets backend's insert is the effect's own transaction
  });

  it('a read: admission + settlement', async () => {
    const n = await transactions(async () => {
      const r = await c.call('kb_search', { query: 'printer' });
      expect(r.isError).toBeFalsy();
    });
    expect(n).toBe(2);
  });

  it('a call refused before admission (invalid arguments) is one settlement unit, and still counts', async () => {
    const before = app.sqlite.budgets.tasks(30 * 60_000, app.now()).reduce((s, t) => s + t.calls, 0);
    const n = await transactions(async () => {
      const r = await c.call('ticket_create', { summary: '', requester: 'jdoe', reason: 'x' });
      expect(codeOf(r)).toBe('INVALID_ARGUMENT');
    });
    expect(n).toBe(1);
    const after = app.sqlite.budgets.tasks(30 * 60_000, app.now()).reduce((s, t) => s + t.calls, 0);
    expect(after).toBe(before + 1);
  });

  it('a replay of a completed write: admission + settlement, no effect', async () => {
    const args = { summary: 'replayed', requester: 'jdoe', reason: 'r', idempotency_key: 'units-replay-1' };
    await c.call('ticket_create', args);
    const n = await transactions(async () => {
      const r = await c.call('ticket_create', args);
      expect(r._meta?.['itguard/replay']).toBeDefined();
    });
    expect(n).toBe(2);
  });
});
