/** The principal budget store on its own: windows, trips, clearing and reset, with an injected clock. */
import { describe, expect, it } from 'vitest';
import type { BudgetRule } from '../../src/policy/schema.js';
import { BudgetStore } from '../../src/store/budget-store.js';
import { openDb } from '../../src/store/db.js';

const calls: BudgetRule = {
  name: 'calls',
  window: 'hour',
  per: 'principal',
  measure: 'calls',
  limit: 3,
  alarmAt: 2,
  tools: undefined,
};
const base = { principal: 'p', sessionId: 's1', sig: undefined, identicalPerHour: 20 };
const settle = (b: BudgetStore, failed: boolean | undefined, now: number) =>
  b.settle({ principal: 'p', sessionId: 's1', rules: [], failed, resultBytes: 0, failuresInARow: 2, now });

describe('BudgetStore', () => {
  it('reserves calls up to the limit, alarms once at alarm_at, and starts over in the next window', () => {
    const b = new BudgetStore(openDb(':memory:'), 'UTC');
    const t = Date.parse('2026-03-01T10:15:00Z');
    const r = [1, 2, 3, 4].map((i) => b.admit({ ...base, rules: [calls], now: t + i }));
    expect(r.map((x) => x.ok)).toEqual([true, true, true, false]);
    expect(r.flatMap((x) => (x.ok ? x.alarms : [])).map((a) => a.used)).toEqual([2]);
    expect(r[3]).toMatchObject({ kind: 'exhausted', used: 3, resetsAt: Date.parse('2026-03-01T11:00:00Z') });
    expect(b.admit({ ...base, rules: [calls], now: Date.parse('2026-03-01T11:00:00Z') }).ok).toBe(true);
  });

  it('trips after more than failures_in_a_row failures; a success ends the streak; the trip clears at the hour and does not re-trip on the next failure', () => {
    const b = new BudgetStore(openDb(':memory:'), 'UTC');
    const t = Date.parse('2026-03-01T10:15:00Z');
    settle(b, true, t);
    settle(b, true, t);
    settle(b, false, t); // success: streak over
    expect(settle(b, true, t).trip).toBeUndefined();
    expect(settle(b, true, t).trip).toBeUndefined();
    expect(settle(b, undefined, t).trip).toBeUndefined(); // waiting neither fails nor succeeds
    const tripped = settle(b, true, t).trip;
    expect(tripped).toMatchObject({ rule: 'failures_in_a_row', clearsAt: Date.parse('2026-03-01T11:00:00Z') });
    expect(b.admit({ ...base, rules: [], now: t + 1 })).toMatchObject({ ok: false, kind: 'tripped' });
    const later = Date.parse('2026-03-01T11:00:01Z');
    expect(b.admit({ ...base, rules: [], now: later }).ok).toBe(true);
    // A fresh streak after the trip: one failure does not trip it again at once.
    expect(settle(b, true, later).trip).toBeUndefined();
    expect(b.breaker('p', later)).toMatchObject({ streak: 1, trip: undefined });
  });

  it('trips on more than identical_per_hour identical calls; reset clears the trip and the counts', () => {
    const b = new BudgetStore(openDb(':memory:'), 'UTC');
    const t = Date.parse('2026-03-01T10:15:00Z');
    const same = { ...base, sig: 'abc', identicalPerHour: 2, rules: [] };
    expect([1, 2, 3].map((i) => b.admit({ ...same, now: t + i }).ok)).toEqual([true, true, false]);
    expect(b.admit({ ...base, rules: [], sig: 'other', now: t + 4 })).toMatchObject({
      ok: false,
      kind: 'tripped',
      fresh: false,
    });
    expect(b.reset('p', t + 5).trip?.rule).toBe('identical_per_hour');
    expect(b.admit({ ...same, now: t + 6 }).ok).toBe(true);
  });
});
