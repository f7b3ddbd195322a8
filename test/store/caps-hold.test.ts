/**
 * A cap reservation belongs to its request (migration 9): CapsStore.reserve with a hold records the items on the
 * request's idempotency records, a retry that adopted the records of an attempt that died before its effect
 * replaces that attempt's reservation instead of adding a second one, and a release gives back exactly once.
 */
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import type { CapRule } from '../../src/core/policy.js';
import { ApprovalsStore } from '../../src/store/sqlite/approvals-store.js';
import { CapsStore, type CapDemand, type CapHold } from '../../src/store/sqlite/caps-store.js';
import { openDb, type Db } from '../../src/store/sqlite/db.js';
import { IdempotencyStore, type BeginInput } from '../../src/store/sqlite/idempotency-store.js';
import { tempDir } from '../helpers/harness.js';

const T = Date.parse('2026-03-02T10:00:00Z');
const rule = (name: string, limit: number): CapRule => ({
  tool: 'ticket_create',
  name,
  window: 'day',
  per: 'global',
  measure: 'calls',
  limit,
  alarmAt: undefined,
});
const daily = rule('tickets-per-day', 1);
const demand = (r: CapRule = daily): CapDemand[] => [{ rule: r, scopeKey: '*', amount: 1 }];
const input = (traceId: string, now = T): BeginInput => ({
  principal: 'p',
  key: 'k:one',
  explicit: true,
  tool: 'ticket_create',
  argsSha: 'sha',
  traceId,
  now,
  leaseMs: 60_000,
  ttlMs: 86_400_000,
  dedupeKey: 'd:sha',
  dedupeTtlMs: 900_000,
});
const capItemsOf = (db: Db) =>
  db.prepare('SELECT key, cap_items FROM idempotency ORDER BY key').all() as {
    key: string;
    cap_items: string | null;
  }[];

/** A request whose first attempt reserved and then died (its process gone) before the effect. */
function orphaned(db: Db) {
  const idem = new IdempotencyStore(db);
  const caps = new CapsStore(db, 'UTC');
  const first = idem.begin(input('t1'));
  if (first.kind !== 'new') throw new Error(first.kind);
  const hold1: CapHold = { principal: 'p', requestId: first.requestId, traceId: 't1' };
  const r = caps.reserve(demand(), T, hold1);
  expect(r.ok).toBe(true);
  // kill -9: the records stay in flight, owned by a process that is gone
  db.prepare("UPDATE idempotency SET owner = 'gone-host:1:dead', lease_until = 0").run();
  return { idem, caps, requestId: first.requestId, hold1 };
}

/** The retry: begin finds the orphan, the backend said it never happened, the retry adopts it. */
function adopt(idem: IdempotencyStore, requestId: string, traceId: string, now = T + 5_000, from = 't1'): CapHold {
  const again = idem.begin(input(traceId, now));
  expect(again.kind).toBe('orphan');
  expect(idem.adopt('p', requestId, traceId, now, 60_000, from)).toBe(true);
  return { principal: 'p', requestId, traceId };
}

describe('CapsStore: a reservation belongs to its request', () => {
  it('is recorded on every record of the request, and a release gives it back once', () => {
    const db = openDb(':memory:');
    const idem = new IdempotencyStore(db);
    const caps = new CapsStore(db, 'UTC');
    const b = idem.begin(input('t1'));
    if (b.kind !== 'new') throw new Error(b.kind);
    const hold: CapHold = { principal: 'p', requestId: b.requestId, traceId: 't1' };
    const r = caps.reserve(demand(), T, hold);
    if (!r.ok) throw new Error(r.reason);
    expect(r.replaced).toEqual([]);
    expect(caps.used(daily, '*', T)).toBe(1);
    // the explicit key's record and the action's dedupe record both name it
    expect(capItemsOf(db).map((x) => [x.key, JSON.parse(x.cap_items!)])).toEqual([
      ['d:sha', r.items],
      ['k:one', r.items],
    ]);
    expect(caps.holding('p', b.requestId)).toEqual(r.items);
    caps.release(r.items, hold);
    expect(caps.used(daily, '*', T)).toBe(0);
    expect(capItemsOf(db).map((x) => x.cap_items)).toEqual([null, null]);
    // a second release (a retry of the give-back, another path) finds nothing held and takes nothing
    caps.reserve(demand(), T); // someone else's unit, unrelated to this request
    caps.release(r.items, hold);
    expect(caps.used(daily, '*', T)).toBe(1);
  });

  it('an adopted retry of an attempt killed before its effect replaces its reservation: charged once, admitted at a full cap', () => {
    const db = openDb(':memory:');
    const { idem, caps, requestId } = orphaned(db);
    expect(caps.used(daily, '*', T)).toBe(1); // the cap is full (limit 1) with the dead attempt's unit
    const hold2 = adopt(idem, requestId, 't2');
    const r = caps.reserve(demand(), T + 5_000, hold2);
    if (!r.ok) throw new Error(`refused: ${r.reason}`);
    expect(r.replaced).toHaveLength(1);
    expect(caps.used(daily, '*', T)).toBe(1);
    expect(caps.holding('p', requestId)).toEqual(r.items);
    // an unrelated request is still refused: the retry took no more room than the request's one unit
    const other = caps.reserve(demand(), T + 6_000);
    expect(other).toMatchObject({ ok: false, reason: 'cap', used: 1 });
  });

  it('a retry refused by another cap still gives the dead attempt its reservation back: the request did nothing', () => {
    const db = openDb(':memory:');
    const { idem, caps, requestId } = orphaned(db);
    const full = rule('tickets-per-hour-other', 1);
    caps.reserve(demand(full), T); // another rule, already full
    const hold2 = adopt(idem, requestId, 't2');
    const r = caps.reserve([...demand(), ...demand(full)], T + 5_000, hold2);
    expect(r).toMatchObject({ ok: false, reason: 'cap', rule: { name: full.name } });
    expect(caps.used(daily, '*', T)).toBe(0);
    expect(caps.holding('p', requestId)).toBeUndefined();
  });

  it('of two retries that recovered the same orphan at once, exactly one adopts it', () => {
    const { dir, cleanup } = tempDir();
    try {
      const file = join(dir, 'race.db');
      const a = openDb(file);
      const b = openDb(file);
      const { idem, requestId } = orphaned(a);
      const other = new IdempotencyStore(b);
      // both saw the attempt t1 die and asked the backend; both try to take it over
      expect(idem.begin(input('t2', T + 5_000)).kind).toBe('orphan');
      expect(other.begin(input('t3', T + 5_000)).kind).toBe('orphan');
      expect(idem.adopt('p', requestId, 't2', T + 5_000, 60_000, 't1')).toBe(true);
      expect(other.adopt('p', requestId, 't3', T + 5_000, 60_000, 't1')).toBe(false);
      a.close();
      b.close();
    } finally {
      cleanup();
    }
  });

  it('across connections (two processes on one file), a call that lost the request reserves and gives back nothing', () => {
    const { dir, cleanup } = tempDir();
    try {
      const file = join(dir, 'hold.db');
      const a = openDb(file);
      const b = openDb(file);
      const { idem, requestId, hold1 } = orphaned(a);
      const capsA = new CapsStore(a, 'UTC');
      const capsB = new CapsStore(b, 'UTC');
      // two retries adopted the same orphan, the second once the first's lease had ended: the later one owns it
      const stale = adopt(idem, requestId, 't2');
      a.prepare('UPDATE idempotency SET lease_until = 0').run();
      const owner = adopt(new IdempotencyStore(b), requestId, 't3', T + 6_000, 't2');
      expect(capsA.reserve(demand(), T + 7_000, stale)).toEqual({ ok: false, reason: 'not_held' });
      const r = capsB.reserve(demand(), T + 7_000, owner);
      expect(r.ok).toBe(true);
      expect(capsA.used(daily, '*', T)).toBe(1);
      // the dead attempt's and the stale call's give-backs take nothing from the owner's reservation
      capsA.release(r.ok ? r.items : [], hold1);
      capsA.release(r.ok ? r.items : [], stale);
      expect(capsA.used(daily, '*', T)).toBe(1);
      capsB.release(r.ok ? r.items : [], owner);
      expect(capsA.used(daily, '*', T)).toBe(0);
      a.close();
      b.close();
    } finally {
      cleanup();
    }
  });

  it('an approval request takes the reservation over from the records, so a later adoption does not give it back', () => {
    const db = openDb(':memory:');
    const idem = new IdempotencyStore(db);
    const caps = new CapsStore(db, 'UTC');
    const approvals = new ApprovalsStore(db, () => T);
    const b = idem.begin(input('t1'));
    if (b.kind !== 'new') throw new Error(b.kind);
    const r = caps.reserve(demand(), T, { principal: 'p', requestId: b.requestId, traceId: 't1' });
    if (!r.ok) throw new Error(r.reason);
    const { row } = approvals.create({
      tier: 'approval',
      principal: 'p',
      onBehalfOf: undefined,
      sessionId: undefined,
      tool: 'ticket_create',
      args: {},
      argsSha: 'binding',
      summary: 's',
      reason: 'r',
      target: undefined,
      caps: [],
      capItems: r.items,
      idemKey: b.requestId,
      requestId: b.requestId,
      traceId: 't1',
      ttlMs: 3_600_000,
      withVerifyLink: false,
    });
    expect(JSON.parse(row.cap_items)).toEqual(r.items);
    expect(caps.holding('p', b.requestId)).toBeUndefined();
    // killed before the records were parked on the request: the retry adopts them and reserves its own unit
    // (which the approval step then gives back, as it joins the open request); the request's unit is untouched
    db.prepare("UPDATE idempotency SET owner = 'gone-host:1:dead', lease_until = 0").run();
    const hold2 = adopt(idem, b.requestId, 't2');
    const again = caps.reserve(demand(rule('tickets-per-day', 2)), T + 5_000, hold2);
    if (!again.ok) throw new Error(again.reason);
    expect(again.replaced).toEqual([]);
    caps.release(again.items, hold2);
    expect(caps.used(daily, '*', T)).toBe(1);
    // denied: the request gives back what it holds, once
    approvals.decide(row.id, false, { name: 'approver' }, undefined);
    expect(caps.used(daily, '*', T)).toBe(0);
  });
});
