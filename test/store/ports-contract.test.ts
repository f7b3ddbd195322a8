/**
 * The guard store ports' contract, run against both adapters (store/ports.ts): SQLite on a temporary file and
 * PostgreSQL on a real server (test/helpers/pg.ts). Each case opens three handles on one fresh store — three
 * connections with their own stores and unit runners, as three processes or replicas would — and drives them only
 * through the ports and units of work: budgets and task bounds, idempotency, caps exact under concurrency, approvals
 * claimed once, one audit chain that verifies, and (PostgreSQL) the kill switch seen by another connection.
 */
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { CapRule } from '../../src/core/policy.js';
import type { BudgetRule } from '../../src/policy/schema.js';
import type { AuditPort, GuardStore } from '../../src/store/ports/index.js';
import { single, UnitOfWork } from '../../src/store/unit.js';
import type { AdmitInput, TaskBounds } from '../../src/store/sqlite/budget-store.js';
import type { BeginInput } from '../../src/store/sqlite/idempotency-store.js';
import type { NewApproval } from '../../src/store/sqlite/approvals-store.js';
import { AuditStore, type VerifyResult } from '../../src/store/sqlite/audit-store.js';
import { openDb, type Db } from '../../src/store/sqlite/db.js';
import { AuditWriter } from '../../src/store/sqlite/committer.js';
import { sqliteGuardStore } from '../../src/store/sqlite/ports.js';
import { KillSwitchStore } from '../../src/store/sqlite/killswitch-store.js';
import { CapsStore } from '../../src/store/sqlite/caps-store.js';
import { BudgetStore } from '../../src/store/sqlite/budget-store.js';
import { IdempotencyStore } from '../../src/store/sqlite/idempotency-store.js';
import { ApprovalsStore } from '../../src/store/sqlite/approvals-store.js';
import { connectPg, type PgStore } from '../../src/store/postgres/connect.js';
import { migratePg } from '../../src/store/postgres/migrations.js';
import { PgKillSwitch, pgGuardStore, PgUnitRunner, type PgGuardStore } from '../../src/store/postgres/ports.js';
import { RerunUnit } from '../../src/store/postgres/runner.js';
import { setKillSwitch } from '../../src/guard/operator.js';
import { tempDir } from '../helpers/harness.js';
import { type Pg, startPg } from '../helpers/pg.js';

interface Handle {
  store: GuardStore;
  runner: AuditPort;
  /** Statements sent (PostgreSQL only). */
  queries: () => number;
}

interface Adapter {
  name: string;
  /** `n` handles on one fresh store. */
  fresh(n: number): Promise<Handle[]>;
  verify(hs: Handle[]): Promise<VerifyResult>;
}

const T = Date.parse('2026-03-01T10:15:00Z');
const bounds: TaskBounds = {
  idleMs: 30 * 60_000,
  maxCalls: 3,
  maxMs: 30 * 60_000,
  maxResultBytes: 1000,
  maxIdenticalCalls: 2,
  maxConsecutiveFailures: 2,
};
const roomy: TaskBounds = { ...bounds, maxCalls: 40 };
const admitIn = (over: Partial<AdmitInput> = {}): AdmitInput => ({
  principal: 'p',
  task: { source: 'meta', id: 't1' },
  user: undefined,
  rules: [],
  sig: undefined,
  polling: false,
  bounds,
  trippedTasksPerHour: 3,
  now: T,
  ...over,
});
const budget = (name: string, limit: number, measure: BudgetRule['measure'] = 'calls'): BudgetRule => ({
  name,
  window: 'hour',
  per: 'principal',
  measure,
  limit,
  alarmAt: measure === 'calls' ? Math.max(1, limit - 1) : undefined,
  tools: undefined,
});
const cap = (name: string, limit: number): CapRule => ({
  tool: 'ticket_create',
  name,
  window: 'day',
  per: 'global',
  measure: 'calls',
  limit,
  alarmAt: undefined,
});
const beginIn = (over: Partial<BeginInput> = {}): BeginInput => ({
  principal: 'p',
  key: 'k1',
  explicit: true,
  tool: 'ticket_create',
  argsSha: 'sha-a',
  traceId: 'tr1',
  now: T,
  leaseMs: 60_000,
  ttlMs: 86_400_000,
  dedupeKey: 'd:sha-a',
  dedupeTtlMs: 900_000,
  ...over,
});
const approvalIn = (): NewApproval => ({
  tier: 'approval',
  principal: 'p',
  sessionId: undefined,
  tool: 'ticket_create',
  args: { summary: 's' },
  argsSha: 'sha-x',
  summary: 'create a ticket',
  reason: 'test',
  target: undefined,
  caps: [],
  capItems: [],
  idemKey: undefined,
  requestId: undefined,
  traceId: 'tr-a',
  ttlMs: 3_600_000,
  withVerifyLink: false,
});

function sqliteAdapter(): Adapter & { cleanup(): void } {
  const { dir, cleanup } = tempDir();
  let n = 0;
  const dbs: Db[] = [];
  return {
    name: 'sqlite',
    cleanup: () => {
      for (const db of dbs) db.close();
      cleanup();
    },
    async fresh(k) {
      const file = join(dir, `contract-${++n}.db`);
      return Array.from({ length: k }, () => {
        const db = openDb(file);
        dbs.push(db);
        const audit = new AuditStore(db, undefined);
        return {
          store: sqliteGuardStore({
            killSwitch: new KillSwitchStore(db),
            caps: new CapsStore(db, 'UTC'),
            budgets: new BudgetStore(db, 'UTC'),
            idem: new IdempotencyStore(db),
            approvals: new ApprovalsStore(db),
          }),
          runner: new AuditWriter(audit),
          queries: () => 0,
        };
      });
    },
    verify: async (hs) => ((hs[0]!.runner as AuditWriter).store as AuditStore).verify(),
  };
}

function pgAdapter(pg: () => Pg): Adapter & { close(): Promise<void>; stores: PgStore[] } {
  let n = 0;
  const stores: PgStore[] = [];
  const guards: PgGuardStore[] = [];
  return {
    name: 'postgres',
    stores,
    async close() {
      await Promise.all(guards.map((g) => g.stop()));
      await Promise.all(stores.map((s) => s.close()));
    },
    async fresh(k) {
      const url = await pg().createDatabase(`contract_${++n}`);
      const hs: Handle[] = [];
      for (let r = 0; r < k; r++) {
        let q = 0;
        const s = await connectPg(url, { onQuery: () => q++ });
        stores.push(s);
        if (r === 0) await migratePg(s);
        const store = pgGuardStore(s, { tz: 'UTC', owner: `replica-${r}:${n}` });
        guards.push(store);
        await store.start();
        hs.push({ store, runner: new PgUnitRunner(s), queries: () => q });
      }
      return hs;
    },
    verify: async (hs) => (hs[0]!.runner as PgUnitRunner).verify(),
  };
}

let pgServer: Pg | undefined;
const sqlite = sqliteAdapter();
const postgres = pgAdapter(() => pgServer!);

beforeAll(async () => {
  pgServer = await startPg();
}, 60_000);

afterAll(async () => {
  sqlite.cleanup();
  await postgres.close();
  await pgServer?.stop();
});

describe.each([sqlite, postgres])('store ports contract: $name', (adapter) => {
  it('admit counts a task and refuses past max_calls; settle moves the failure streak to a trip', async () => {
    const [h] = await adapter.fresh(1);
    const { store, runner } = h!;
    const admit = (over: Partial<AdmitInput> = {}) => single(runner, (tx) => store.budgets.admit(tx, admitIn(over)));
    expect((await admit({ now: T + 1 })).ok).toBe(true);
    expect((await admit({ now: T + 2 })).ok).toBe(true);
    expect(await store.budgets.wouldRefuse(admitIn({ now: T + 3 }))).toBe(false);
    expect((await admit({ now: T + 3 })).ok).toBe(true);
    expect(await store.budgets.wouldRefuse(admitIn({ now: T + 4 }))).toBe(true);
    expect(await admit({ now: T + 4 })).toMatchObject({ ok: false, kind: 'task_exhausted', bound: 'max_calls' });
    // polling calls do not spend the task's calls
    expect((await admit({ now: T + 5, polling: true })).ok).toBe(true);

    const t2 = { source: 'meta' as const, id: 't2' };
    for (let k = 0; k < 3; k++) {
      expect((await admit({ task: t2, now: T + 10 + k, bounds: roomy })).ok).toBe(true);
      await single(runner, (tx) =>
        store.budgets.settle(tx, {
          principal: 'p',
          task: t2,
          user: undefined,
          rules: [],
          failed: true,
          resultBytes: 0,
          now: T + 10 + k,
        }),
      );
    }
    // three failures in a row > max_consecutive_failures 2: the next call trips the task
    expect(await admit({ task: t2, now: T + 20, bounds: roomy })).toMatchObject({
      ok: false,
      kind: 'tripped',
      level: 'task',
      fresh: true,
    });
    expect(await admit({ task: t2, now: T + 21, bounds: roomy })).toMatchObject({
      ok: false,
      kind: 'tripped',
      fresh: false,
    });
  });

  it('identical calls trip the task; three tripped tasks trip the principal', async () => {
    const [h] = await adapter.fresh(1);
    const { store, runner } = h!;
    const admit = (over: Partial<AdmitInput>) => single(runner, (tx) => store.budgets.admit(tx, admitIn(over)));
    for (const id of ['a', 'b', 'c']) {
      const task = { source: 'meta' as const, id };
      expect((await admit({ task, sig: 'same', now: T + 1 })).ok).toBe(true);
      expect((await admit({ task, sig: 'same', now: T + 2 })).ok).toBe(true);
      const r = await admit({ task, sig: 'same', now: T + 3 });
      expect(r).toMatchObject({ ok: false, kind: 'tripped', level: 'task', fresh: true });
      expect('fleet' in r && r.fleet !== undefined).toBe(id === 'c');
    }
    const other = await admit({ task: { source: 'meta', id: 'fresh' }, now: T + 4 });
    expect(other).toMatchObject({ ok: false, kind: 'tripped', level: 'principal' });
  });

  it('a windowed calls budget admits exactly its limit under concurrency from three handles, alarming once', async () => {
    const hs = await adapter.fresh(3);
    const rule = budget('calls-per-hour', 7);
    const results = await Promise.all(
      Array.from({ length: 30 }, (_, k) => {
        const h = hs[k % 3]!;
        const task = { source: 'meta' as const, id: `task-${k}` };
        return single(h.runner, (tx) => h.store.budgets.admit(tx, admitIn({ task, rules: [rule], now: T + k })));
      }),
    );
    expect(results.filter((r) => r.ok)).toHaveLength(7);
    expect(results.flatMap((r) => (r.ok ? r.alarms : []))).toHaveLength(1);
    const refused = results.find((r) => !r.ok);
    expect(refused).toMatchObject({ kind: 'exhausted', used: 7, resetsAt: Date.parse('2026-03-01T11:00:00Z') });
    // the next window starts over
    const next = await single(hs[0]!.runner, (tx) =>
      hs[0]!.store.budgets.admit(tx, admitIn({ rules: [rule], now: Date.parse('2026-03-01T11:00:00Z') })),
    );
    expect(next.ok).toBe(true);
  });

  it('a failures budget refuses once settled failures reach it', async () => {
    const [h] = await adapter.fresh(1);
    const { store, runner } = h!;
    const rule = budget('failures-per-hour', 2, 'failures');
    const task = (k: number) => ({ source: 'meta' as const, id: `f${k}` });
    for (let k = 0; k < 2; k++) {
      expect(
        (await single(runner, (tx) => store.budgets.admit(tx, admitIn({ task: task(k), rules: [rule] })))).ok,
      ).toBe(true);
      await single(runner, (tx) =>
        store.budgets.settle(tx, {
          principal: 'p',
          task: task(k),
          user: undefined,
          rules: [rule],
          failed: true,
          resultBytes: 0,
          now: T,
        }),
      );
    }
    const r = await single(runner, (tx) => store.budgets.admit(tx, admitIn({ task: task(9), rules: [rule] })));
    expect(r).toMatchObject({ ok: false, kind: 'exhausted', used: 2 });
  });

  it('idempotency: new, in_progress, conflict, replay, dedupe across keys, free, and one winner of 30', async () => {
    const hs = await adapter.fresh(3);
    const [a, b] = hs as [Handle, Handle];
    const begin = (h: Handle, over: Partial<BeginInput> = {}) =>
      single(h.runner, (tx) => h.store.idem.begin(tx, beginIn(over)));
    const first = await begin(a);
    expect(first.kind).toBe('new');
    const requestId = first.kind === 'new' ? first.requestId : '';
    expect((await begin(b, { traceId: 'tr2' })).kind).toBe('in_progress');
    expect((await begin(b, { argsSha: 'sha-b', dedupeKey: 'd:sha-b' })).kind).toBe('conflict');
    // the same action under another key inside the dedupe window is that action again
    expect((await begin(b, { key: 'k2', traceId: 'tr3' })).kind).toBe('in_progress');
    await single(a.runner, (tx) => a.store.idem.finish(tx, 'p', requestId, 'completed', { ok: 1 }, T + 5));
    const replay = await begin(b, { now: T + 10 });
    expect(replay).toMatchObject({ kind: 'replay', row: { request_id: requestId, result: '{"ok":1}' } });
    expect(await begin(b, { key: 'k3', now: T + 11 })).toMatchObject({ kind: 'replay' });
    // a lease that ended: an orphan
    const o = await begin(a, { key: 'k4', argsSha: 'sha-o', dedupeKey: undefined, leaseMs: 10 });
    expect(o.kind).toBe('new');
    // (PostgreSQL sets and reads leases on the database's clock: let 10 ms pass there too)
    await new Promise((r) => setTimeout(r, 30));
    expect(
      (await begin(b, { key: 'k4', argsSha: 'sha-o', dedupeKey: undefined, now: T + 1000, traceId: 'x' })).kind,
    ).toBe('orphan');
    // freed: begins afresh
    const f = await begin(a, { key: 'k5', argsSha: 'sha-f', dedupeKey: undefined });
    await single(a.runner, (tx) => a.store.idem.free(tx, 'p', f.kind === 'new' ? f.requestId : ''));
    expect((await begin(b, { key: 'k5', argsSha: 'sha-f', dedupeKey: undefined, now: T + 1 })).kind).toBe('new');
    // 30 concurrent begins of one key over three handles: one new
    const all = await Promise.all(
      Array.from({ length: 30 }, (_, k) =>
        begin(hs[k % 3]!, { key: 'storm', argsSha: 'sha-s', dedupeKey: 'd:sha-s', traceId: `s${k}`, now: T + 2 }),
      ),
    );
    expect(all.filter((r) => r.kind === 'new')).toHaveLength(1);
    expect(all.filter((r) => r.kind === 'in_progress')).toHaveLength(29);
  });

  it('caps: all or none, and exactly the limit of 30 concurrent units × 3 handles, round after round', async () => {
    const hs = await adapter.fresh(3);
    const [h] = hs as [Handle];
    const one = cap('one', 1);
    const many = cap('many', 10);
    const both = [
      { rule: many, scopeKey: '*', amount: 1 },
      { rule: one, scopeKey: '*', amount: 1 },
    ];
    expect((await single(h.runner, (tx) => h.store.caps.reserve(tx, both, T))).ok).toBe(true);
    const refused = await single(h.runner, (tx) => h.store.caps.reserve(tx, both, T));
    expect(refused).toMatchObject({ ok: false, reason: 'cap', used: 1 });
    expect(await h.store.caps.used(many, '*', T)).toBe(1);
    for (let round = 0; round < 4; round++) {
      const rule = cap(`storm-${round}`, 17);
      const results = await Promise.all(
        Array.from({ length: 90 }, (_, k) => {
          const x = hs[k % 3]!;
          return single(x.runner, (tx) => x.store.caps.reserve(tx, [{ rule, scopeKey: '*', amount: 1 }], T));
        }),
      );
      expect(results.filter((r) => r.ok)).toHaveLength(17);
      expect(await h.store.caps.used(rule, '*', T)).toBe(17);
    }
  });

  it('approvals: create, decide, and claim exactly once across three handles', async () => {
    const hs = await adapter.fresh(3);
    const [a] = hs as [Handle];
    const { row } = await single(a.runner, (tx) => a.store.approvals.create(tx, approvalIn()));
    expect(row.status).toBe('pending');
    expect((await a.store.approvals.findOpen('p', 'ticket_create', 'sha-x'))?.id).toBe(row.id);
    const decisions = await Promise.all(
      hs.map((h, k) =>
        single(h.runner, (tx) => h.store.approvals.decide(tx, row.id, true, { name: `approver-${k}` }, undefined)),
      ),
    );
    expect(decisions.filter((d) => d.ok)).toHaveLength(1);
    expect(decisions.filter((d) => !d.ok).map((d) => !d.ok && d.reason)).toEqual(['not_pending', 'not_pending']);
    expect((await a.store.approvals.approvedReady()).map((r) => r.id)).toEqual([row.id]);
    const claims = await Promise.all(
      Array.from({ length: 15 }, (_, k) => {
        const h = hs[k % 3]!;
        return single(h.runner, (tx) => h.store.approvals.claim(tx, row.id, T, 60_000));
      }),
    );
    expect(claims.filter(Boolean)).toHaveLength(1);
    const winner = hs[claims.indexOf(true) % 3]!;
    await single(winner.runner, (tx) => winner.store.approvals.finish(tx, row.id, 'succeeded', { done: true }));
    expect((await a.store.approvals.get(row.id))?.status).toBe('succeeded');
    const nonce = await single(a.runner, (tx) => a.store.approvals.newStateNonce(tx, row.id));
    const takes = await Promise.all(
      hs.map((h) => single(h.runner, (tx) => h.store.approvals.takeStateNonce(tx, row.id, nonce))),
    );
    expect(takes.filter(Boolean)).toHaveLength(1);
  });

  it('an expired approval gives back the cap room it took over from its request, once', async () => {
    const [h] = (await adapter.fresh(1)) as [Handle];
    const { store, runner } = h;
    const rule = cap('held', 5);
    const b = await single(runner, (tx) => store.idem.begin(tx, beginIn({ key: 'ap', dedupeKey: undefined })));
    const requestId = b.kind === 'new' ? b.requestId : '';
    const hold = { principal: 'p', requestId, traceId: 'tr1' };
    const r = await single(runner, (tx) =>
      store.caps.reserve(tx, [{ rule, scopeKey: 'u\u0000x', amount: 2 }], T, hold),
    );
    if (!r.ok) throw new Error('not reserved');
    expect(await store.caps.used(rule, 'u\u0000x', T)).toBe(2);
    const a = { ...approvalIn(), capItems: r.items, idemKey: requestId, traceId: 'tr1', ttlMs: 300 };
    const { row } = await single(runner, (tx) => store.approvals.create(tx, a));
    expect(JSON.parse(row.cap_items)).toEqual(r.items);
    // the request holds the room now: a release by the call's hold gives nothing back
    await single(runner, (tx) => store.caps.release(tx, r.items, hold));
    expect(await store.caps.used(rule, 'u\u0000x', T)).toBe(2);
    await new Promise((res) => setTimeout(res, 350));
    expect((await store.approvals.get(row.id))?.status).toBe('expired');
    expect(await store.caps.used(rule, 'u\u0000x', T)).toBe(0);
    expect((await store.approvals.get(row.id))?.status).toBe('expired');
    expect(await store.caps.used(rule, 'u\u0000x', T)).toBe(0);
  });

  it('one audit chain from three handles writing at once verifies', async () => {
    const hs = await adapter.fresh(3);
    await Promise.all(
      Array.from({ length: 60 }, (_, k) => {
        const h = hs[k % 3]!;
        const u = new UnitOfWork('admission');
        void u.add((tx) => h.store.caps.reserve(tx, [{ rule: cap('audit', 1000), scopeKey: '*', amount: 1 }], T));
        const seqs = h.runner.append(u, [{ event: 'test.a', actor: `h${k % 3}`, args: { k }, ts: T + k }]);
        const more = h.runner.append(u, () => [{ event: 'test.b', actor: `h${k % 3}`, detail: { k } }]);
        return h.runner.commit(u).then(() => Promise.all([seqs, more]));
      }),
    );
    const v = await adapter.verify(hs);
    expect(v).toMatchObject({ ok: true, count: 120 });
  });
});

describe('PostgreSQL only', () => {
  it('the kill switch flips on another connection within a second (NOTIFY), and is engaged before its first read', async () => {
    const [a, b] = (await postgres.fresh(2)) as [Handle, Handle];
    const ka = (a.store as PgGuardStore).killSwitch;
    const kb = (b.store as PgGuardStore).killSwitch;
    expect(kb.state(60_000).engaged).toBe(false);
    const t0 = performance.now();
    await setKillSwitch({ store: { killSwitch: ka }, audit: a.runner }, true, 'incident', 'ops');
    // Only the cached view is read: the notification must bring the change.
    while (!kb.state(60_000).engaged) {
      expect(performance.now() - t0).toBeLessThan(1000);
      await new Promise((r) => setTimeout(r, 5));
    }
    console.log(`kill switch seen by the other connection after ${Math.round(performance.now() - t0)} ms`);
    await setKillSwitch({ store: { killSwitch: ka }, audit: a.runner }, false, 'resolved', 'ops');
    while (kb.state(60_000).engaged) {
      expect(performance.now() - t0).toBeLessThan(2000);
      await new Promise((r) => setTimeout(r, 5));
    }
    const { pgGuardStore: make } = await import('../../src/store/postgres/ports.js');
    const unread = make(postgres.stores[0]!, { tz: 'UTC' });
    expect(unread.killSwitch.state(0)).toMatchObject({ engaged: true });
    expect(await (a.runner as PgUnitRunner).verify()).toMatchObject({ ok: true, count: 2 });
  });

  it('a replica renews its holds while it runs; one that stops renewing (dies) leaves an orphan within holdMs', async () => {
    const [, b] = (await postgres.fresh(2)) as [Handle, Handle];
    const sa = postgres.stores.at(-2)!; // the first handle's connection: the database b is on
    const { pgGuardStore: make } = await import('../../src/store/postgres/ports.js');
    // Replica A, holds of 300 ms renewed every 100 ms, running a call whose own lease is a minute.
    const a = make(sa, { tz: 'UTC', owner: 'replica-alive', holdMs: 300 });
    const ra = new PgUnitRunner(sa);
    await a.start();
    const input = beginIn({ key: 'held', argsSha: 'sha-h', dedupeKey: undefined, leaseMs: 60_000 });
    expect((await single(ra, (tx) => a.idem.begin(tx, input))).kind).toBe('new');
    const other = (trace: string) =>
      single(b.runner, (tx) => b.store.idem.begin(tx, { ...input, traceId: trace, now: input.now + 1 }));
    await new Promise((r) => setTimeout(r, 800));
    expect((await other('t-b1')).kind).toBe('in_progress');
    expect(a.idem.holds.renewals).toBeGreaterThan(2);
    // A dies: nothing renews; within the hold the record is an orphan for B.
    await a.stop();
    await new Promise((r) => setTimeout(r, 400));
    expect((await other('t-b2')).kind).toBe('orphan');
  });

  it("a replica's clock is the database's: windows begin and end at the same instant on every replica", async () => {
    await postgres.fresh(1);
    const s = postgres.stores.at(-1)!;
    const { PgClock } = await import('../../src/store/postgres/clock.js');
    // This database's clock runs an hour and a half ahead of every process's.
    await s.sql.unsafe(`CREATE OR REPLACE FUNCTION itguard_now_ms() RETURNS BIGINT LANGUAGE sql VOLATILE
      AS $$ SELECT (extract(epoch FROM clock_timestamp()) * 1000)::BIGINT + 5400000 $$`);
    const clock = await PgClock.start(s);
    try {
      expect(Math.abs(clock.now() - (Date.now() + 5_400_000))).toBeLessThan(50);
    } finally {
      clock.stop();
    }
  });

  it('a unit PostgreSQL rolls back with 40001 runs again whole; only the committed run is seen', async () => {
    const [h] = (await postgres.fresh(1)) as [Handle];
    const runner = h.runner as PgUnitRunner;
    const rule = cap('rerun', 10);
    let runs = 0;
    const u = new UnitOfWork('admission');
    const reserved = u.add((tx) => h.store.caps.reserve(tx, [{ rule, scopeKey: '*', amount: 1 }], T));
    const seqs = runner.append(u, () => [{ event: 'test.rerun', actor: 'x', detail: { run: runs } }]);
    const counted = u.add(() => {
      runs += 1;
      if (runs === 1) throw new RerunUnit('test: first run refused');
      return runs;
    });
    await runner.commit(u);
    expect(await counted).toBe(2);
    expect((await reserved).ok).toBe(true);
    expect(await seqs).toEqual([1]);
    expect(runner.retries).toBe(1);
    // the first run's reservation and record were rolled back with it
    expect(await h.store.caps.used(rule, '*', T)).toBe(1);
    expect(await runner.verify()).toMatchObject({ ok: true, count: 1 });
  });

  it('any other store error rejects every operation of the unit, and nothing of it is written', async () => {
    const [h] = (await postgres.fresh(1)) as [Handle];
    const rule = cap('failing', 10);
    const u = new UnitOfWork('admission');
    const reserved = u.add((tx) => h.store.caps.reserve(tx, [{ rule, scopeKey: '*', amount: 1 }], T));
    void u.add(async (tx) => (tx as PgStore['sql'])`SELECT * FROM no_such_table`);
    await expect(h.runner.commit(u)).rejects.toMatchObject({ name: 'DatabaseError', code: '42P01' });
    await expect(reserved).rejects.toMatchObject({ name: 'DatabaseError' });
    expect(await h.store.caps.used(rule, '*', T)).toBe(0);
  });

  it('the kill switch reads engaged once its view is older than staleMs (the store could not be read)', async () => {
    const [h] = (await postgres.fresh(1)) as [Handle];
    const ks = new PgKillSwitch(postgres.stores[postgres.stores.length - 1]!, { staleMs: 50, pollMs: 0 });
    await ks.start();
    expect(ks.state(60_000).engaged).toBe(false);
    await new Promise((r) => setTimeout(r, 80));
    expect(ks.state(60_000)).toMatchObject({ engaged: true, actor: 'system' });
    // a caller that accepts no older reading than 0 ms starts a re-read: the view is fresh again soon after
    ks.state(0);
    await ks.refresh();
    expect(ks.state(60_000).engaged).toBe(false);
    await ks.stop();
    void h;
  });

  it('round trips per unit: admission and settlement', async () => {
    const [h] = (await postgres.fresh(1)) as [Handle];
    const { store, runner } = h;
    const rule = budget('rt-calls', 100);
    const measure = async (k: number) => {
      const q0 = h.queries();
      const adm = new UnitOfWork('admission');
      const task = { source: 'meta' as const, id: `rt-${k}` };
      const admitted = adm.add((tx) => store.budgets.admit(tx, admitIn({ task, rules: [rule], sig: 's', now: T + k })));
      let requestId = '';
      const begun = adm.add(async (tx) => {
        const r = await store.idem.begin(tx, beginIn({ key: `rt-${k}`, dedupeKey: `d:rt-${k}`, now: T + k }));
        requestId = r.kind === 'new' ? r.requestId : '';
        return r;
      });
      // An operation reads what an earlier one decided (ops run in order): the reservation is held by the request.
      const reserved = adm.add((tx) =>
        store.caps.reserve(tx, [{ rule: cap('rt', 1000), scopeKey: '*', amount: 1 }], T + k, {
          principal: 'p',
          requestId,
          traceId: 'tr1',
        }),
      );
      void runner.append(adm, [{ event: 'call.intent', actor: 'p', tool: 'ticket_create', args: { k } }]);
      await runner.commit(adm);
      expect((await admitted).ok).toBe(true);
      expect((await reserved).ok).toBe(true);
      const admission = h.queries() - q0;
      expect((await begun).kind).toBe('new');
      const q1 = h.queries();
      const set = new UnitOfWork('settlement');
      void runner.append(set, [{ event: 'call.outcome', actor: 'p', tool: 'ticket_create', outcome: 'ok' }]);
      void set.add((tx) => store.idem.finish(tx, 'p', requestId, 'completed', { ok: true }, T + k));
      void set.add((tx) =>
        store.budgets.settle(tx, {
          principal: 'p',
          task,
          user: undefined,
          rules: [rule],
          failed: false,
          resultBytes: 10,
          now: T + k,
        }),
      );
      await runner.commit(set);
      return { admission, settlement: h.queries() - q1 };
    };
    await measure(0);
    const m = await measure(1);
    const t0 = performance.now();
    for (let k = 2; k < 52; k++) await measure(k);
    const ms = (performance.now() - t0) / 50;
    console.log(
      `PostgreSQL statements per unit (BEGIN and COMMIT included): admission ${m.admission}, settlement ${m.settlement}; ` +
        `${ms.toFixed(2)} ms per admission + settlement pair on loopback`,
    );
    // A regression guard at today's counts (each statement is one round trip: a unit's operations run in order).
    expect(m.admission).toBeLessThanOrEqual(13);
    expect(m.settlement).toBeLessThanOrEqual(6);
  });
});
