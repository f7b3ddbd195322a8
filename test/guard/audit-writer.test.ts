/** AuditWriter: a unit of work (records + state changes) commits whole; one failing unit leaves the batch's others. */
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { AuditWriter } from '../../src/store/sqlite/committer.js';
import { AuditStore } from '../../src/store/sqlite/audit-store.js';
import { carryEffectsByAudit, effectCommit, openDb } from '../../src/store/sqlite/db.js';
import { tempDir } from '../helpers/harness.js';
import { UnitOfWork } from '../../src/store/unit.js';
import type { AuditEvent } from '../../src/store/sqlite/audit-store.js';

/** A unit holding audit records and other writes, as a call's settlement does. */
function unit(writer: AuditWriter, o: { events: AuditEvent[]; writes: (() => void)[]; strict?: boolean }): UnitOfWork {
  const u = new UnitOfWork('settlement');
  void writer.append(u, o.events);
  for (const w of o.writes) void u.add(w);
  if (o.strict) u.strict = true;
  return u;
}

describe('AuditWriter.commit', () => {
  it('writes each tail whole or not at all, in one batch with the others, and the chain verifies', async () => {
    const { dir, cleanup } = tempDir();
    try {
      const db = openDb(join(dir, 'w.db'));
      db.exec('CREATE TABLE side (k TEXT PRIMARY KEY)');
      const store = new AuditStore(db, undefined);
      const writer = new AuditWriter(store, 5);
      const put = (k: string) => () => void db.prepare('INSERT INTO side (k) VALUES (?)').run(k);
      const before = store.head().seq;
      const results = await Promise.allSettled([
        writer.commit(
          unit(writer, { events: [{ event: 'call.outcome', actor: 'a', traceId: 't1' }], writes: [put('one')] }),
        ),
        writer.commit(
          unit(writer, {
            events: [{ event: 'call.outcome', actor: 'a', traceId: 't2' }],
            writes: [
              put('two'),
              () => {
                throw new Error('settle failed');
              },
            ],
          }),
        ),
        writer.record({ event: 'call.denied', actor: 'a', traceId: 't3' }),
        // A write that fails on a constraint (duplicate key) rolls back its own unit only.
        writer.commit(
          unit(writer, { events: [{ event: 'call.outcome', actor: 'a', traceId: 't4' }], writes: [put('one')] }),
        ),
      ]);
      expect(results.map((r) => r.status)).toEqual(['fulfilled', 'rejected', 'fulfilled', 'rejected']);
      const side = db.prepare('SELECT k FROM side ORDER BY k').pluck().all();
      expect(side).toEqual(['one']); // 'two' went with its unit's failure
      const traces = store
        .tail(10)
        .filter((r) => r.seq > before)
        .map((r) => r.trace_id);
      expect(traces).toEqual(['t1', 't3']);
      expect(store.verify().ok).toBe(true);
      // The batch's records were appended in one transaction: no commit is left open, and the connection is strict.
      expect(db.inTransaction).toBe(false);
      expect(db.pragma('synchronous', { simple: true })).toBe(2);
      db.close();
    } finally {
      cleanup();
    }
  });

  it('commits a batch with an fsync when a unit holds an intent or an effect’s outcome, and relaxed otherwise', async () => {
    const { dir, cleanup } = tempDir();
    try {
      const db = openDb(join(dir, 's.db'));
      const writer = new AuditWriter(new AuditStore(db, undefined), 1);
      const sync = () => db.pragma('synchronous', { simple: true }) as number;
      const seen: number[] = [];
      const probe = () => void seen.push(sync());
      await writer.commit(unit(writer, { events: [{ event: 'call.outcome', actor: 'a' }], writes: [probe] }));
      await writer.commit(
        unit(writer, { events: [{ event: 'call.outcome', actor: 'a' }], writes: [probe], strict: true }),
      );
      await writer.commit(unit(writer, { events: [{ event: 'call.intent', actor: 'a' }], writes: [probe] }));
      expect(seen).toEqual([1, 2, 2]); // NORMAL, FULL, FULL
      // An embedded effect commits relaxed only on a connection whose effects the audit carries.
      expect(effectCommit(db, sync)).toBe(2);
      carryEffectsByAudit(db);
      expect(effectCommit(db, sync)).toBe(1);
      expect(sync()).toBe(2);
      db.close();
    } finally {
      cleanup();
    }
  });
});
