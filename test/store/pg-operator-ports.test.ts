/**
 * The operator ports (store/ports/operator.ts) run against both adapters, as ports-contract.test.ts runs the guards':
 * SQLite on a temporary file (sqliteStore) and PostgreSQL on a real server (pgStore). Each case opens two handles
 * on one fresh store — two connections with their own stores and unit runners, as two processes or replicas — and
 * drives them through the ports and units of work only: the kill switch set in a unit and seen by the other handle,
 * the approvals console, the budgets' views and resets, the caps' views. Both adapters answer the same sequence;
 * the last case compares their answers.
 *
 * Time zone Europe/Berlin (UTC+1 on 2026-03-01, DST from 2026-03-29): windows are the policy zone's hours and days.
 * Names with `\` and NUL check that PostgreSQL's escaped keys (runner.ts pgKey) come back as callers know them.
 */
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { CapRule } from '../../src/core/policy.js';
import type { BudgetRule } from '../../src/policy/schema.js';
import { setKillSwitch } from '../../src/guard/operator.js';
import type { AuditPort, AuditReadPort, NotifyPort, Store, TokensPort } from '../../src/store/ports/index.js';
import { single, UnitOfWork } from '../../src/store/unit.js';
import type { AdmitInput, TaskBounds } from '../../src/store/sqlite/budget-store.js';
import type { NewApproval } from '../../src/store/sqlite/approvals-store.js';
import { AuditStore } from '../../src/store/sqlite/audit-store.js';
import { openDb, type Db } from '../../src/store/sqlite/db.js';
import { AuditWriter } from '../../src/store/sqlite/committer.js';
import { sqliteStore } from '../../src/store/sqlite/ports.js';
import { KillSwitchStore } from '../../src/store/sqlite/killswitch-store.js';
import { CapsStore } from '../../src/store/sqlite/caps-store.js';
import { BudgetStore } from '../../src/store/sqlite/budget-store.js';
import { IdempotencyStore } from '../../src/store/sqlite/idempotency-store.js';
import { ApprovalsStore } from '../../src/store/sqlite/approvals-store.js';
import { TokenStore } from '../../src/store/sqlite/token-store.js';
import { NotifyStore } from '../../src/store/sqlite/notify-store.js';
import { connectPg, type PgStore } from '../../src/store/postgres/connect.js';
import { migratePg } from '../../src/store/postgres/migrations.js';
import { pgStore, PgUnitRunner, type PgPorts } from '../../src/store/postgres/ports.js';
import { tempDir } from '../helpers/harness.js';
import { type Pg, startPg } from '../helpers/pg.js';

const TZ = 'Europe/Berlin';

interface Handle {
  store: Store;
  runner: AuditPort;
  /** The audit records so far, in chain order. */
  events(): Promise<{ event: string; actor: string; detail: string | null }[]>;
}

interface Adapter {
  name: 'sqlite' | 'postgres';
  fresh(n: number): Promise<Handle[]>;
}

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
      const file = join(dir, `operator-${++n}.db`);
      return Array.from({ length: k }, () => {
        const db = openDb(file);
        dbs.push(db);
        const auditStore = new AuditStore(db, undefined);
        return {
          store: sqliteStore({
            killSwitch: new KillSwitchStore(db),
            caps: new CapsStore(db, TZ),
            budgets: new BudgetStore(db, TZ),
            idem: new IdempotencyStore(db),
            approvals: new ApprovalsStore(db),
            auditStore,
            tokens: new TokenStore(db),
            notifyStore: new NotifyStore(db),
          }),
          runner: new AuditWriter(auditStore),
          events: async () => auditStore.tail(1000),
        };
      });
    },
  };
}

/** The PostgreSQL adapter's audit reads, tokens and notification jobs are another module's: not used here. */
const elsewhere = <T extends object>(what: string): T =>
  new Proxy({} as T, {
    get: (_t, p) => {
      if (typeof p === 'symbol' || p === 'then') return undefined;
      throw new Error(`${what}.${p} is not part of this test`);
    },
  });

function pgAdapter(pg: () => Pg): Adapter & { close(): Promise<void> } {
  let n = 0;
  const conns: PgStore[] = [];
  const stores: PgPorts[] = [];
  return {
    name: 'postgres',
    async close() {
      await Promise.all(stores.map((s) => s.stop()));
      await Promise.all(conns.map((s) => s.close()));
    },
    async fresh(k) {
      const url = await pg().createDatabase(`operator_${++n}`);
      const hs: Handle[] = [];
      for (let r = 0; r < k; r++) {
        const s = await connectPg(url);
        conns.push(s);
        if (r === 0) await migratePg(s);
        // No polling: a change reaches the other handle by its NOTIFY (or a caller's re-read), nothing else.
        const store = pgStore(
          s,
          { tz: TZ, owner: `replica-${r}:${n}`, killSwitch: { pollMs: 0 } },
          {
            auditLog: elsewhere<AuditReadPort>('auditLog'),
            tokens: elsewhere<TokensPort>('tokens'),
            notify: elsewhere<NotifyPort>('notify'),
          },
        );
        stores.push(store);
        await store.start();
        hs.push({
          store,
          runner: new PgUnitRunner(s),
          events: async () => s.sql`SELECT event, actor, detail FROM audit ORDER BY seq`,
        });
      }
      return hs;
    },
  };
}

let pgServer: Pg | undefined;
const sqlite = sqliteAdapter();
const postgres = pgAdapter(() => pgServer!);
/** Each adapter's answers, by case: the last case compares them. */
const answers: Record<string, Record<string, unknown>> = { sqlite: {}, postgres: {} };

beforeAll(async () => {
  pgServer = await startPg();
}, 60_000);

afterAll(async () => {
  sqlite.cleanup();
  await postgres.close();
  await pgServer?.stop();
});

const T = Date.parse('2026-03-01T10:15:00Z');
const IDLE = 30 * 60_000;
const bounds: TaskBounds = {
  idleMs: IDLE,
  maxCalls: 10,
  maxMs: 60 * 60_000,
  maxResultBytes: 100_000,
  maxIdenticalCalls: 2,
  maxConsecutiveFailures: 1,
};
const rule = (name: string, per: BudgetRule['per'], measure: BudgetRule['measure'], limit: number): BudgetRule => ({
  name,
  window: 'hour',
  per,
  measure,
  limit,
  alarmAt: undefined,
  tools: undefined,
});
const RULES = [
  rule('calls-p', 'principal', 'calls', 100),
  rule('calls-t', 'task', 'calls', 50),
  rule('calls-u', 'user', 'calls', 50),
  rule('fails-p', 'principal', 'failures', 10),
];
const P = 'ops\\bot';
const P2 = 'p2';
const meta = (id: string) => ({ source: 'meta' as const, id });
const capRule = (name: string, window: CapRule['window']): CapRule => ({
  tool: 'ticket_create',
  name,
  window,
  per: 'requester',
  measure: 'calls',
  limit: 10,
  alarmAt: undefined,
});
const approvalIn = (over: Partial<NewApproval> = {}): NewApproval => ({
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
  ...over,
});

async function until(ok: () => boolean, ms: number, what: string): Promise<number> {
  const t0 = performance.now();
  while (!ok()) {
    if (performance.now() - t0 > ms) throw new Error(`${what}: not within ${ms} ms`);
    await new Promise((r) => setTimeout(r, 5));
  }
  return performance.now() - t0;
}

describe.each([sqlite, postgres])('operator ports: $name', (adapter) => {
  it('the kill switch: set in a unit with its record, seen at once by its handle and within 1 s by another', async () => {
    const [a, b] = (await adapter.fresh(2)) as [Handle, Handle];
    const deps = { store: a.store, audit: a.runner };
    expect(a.store.killSwitch.state(0).engaged).toBe(false);
    expect(b.store.killSwitch.state(0).engaged).toBe(false);

    const st = await setKillSwitch(deps, true, 'incident', 'ops');
    expect(st).toMatchObject({ engaged: true, reason: 'incident', actor: 'ops' });
    // The handle that set it reads its own change at once.
    expect(a.store.killSwitch.state(0)).toEqual(st);
    await until(() => b.store.killSwitch.state(0).engaged, 1000, 'the other handle sees the engaged switch');
    expect(b.store.killSwitch.state(0)).toEqual(st);

    const back = await setKillSwitch(deps, false, 'resolved', 'ops');
    expect(a.store.killSwitch.state(0)).toEqual(back);
    await until(() => !b.store.killSwitch.state(0).engaged, 1000, 'the other handle sees the released switch');

    // A unit that rolls back changes nothing, here or there, and records nothing.
    const u = new UnitOfWork('single');
    const set = u.add((tx) => a.store.killSwitch.set(tx, true, 'never', 'ops'));
    void u.add(() => {
      throw new Error('test: the unit fails after the switch was set in it');
    });
    await expect(a.runner.commit(u)).rejects.toThrow('test: the unit fails');
    await expect(set).rejects.toThrow();
    expect(a.store.killSwitch.state(0)).toMatchObject({ engaged: false, reason: 'resolved' });
    await new Promise((r) => setTimeout(r, 100));
    expect(b.store.killSwitch.state(0)).toMatchObject({ engaged: false, reason: 'resolved' });

    const events = (await a.events()).map((e) => ({
      event: e.event,
      actor: e.actor,
      detail: JSON.parse(e.detail ?? 'null') as unknown,
    }));
    expect(events).toEqual([
      { event: 'killswitch.engaged', actor: 'ops', detail: { reason: 'incident', at: st.changedAt } },
      { event: 'killswitch.resumed', actor: 'ops', detail: { reason: 'resolved', at: back.changedAt } },
    ]);
  });

  it('approvals console: list, byVerifyToken, countsByClass, consumeVerifyLink after create and decide', async () => {
    const [a, b] = (await adapter.fresh(2)) as [Handle, Handle];
    const create = (h: Handle, over: Partial<NewApproval>) =>
      single(h.runner, (tx) => h.store.approvals.create(tx, approvalIn(over)));
    const one = await create(a, { withVerifyLink: true, argsSha: 'sha-1' });
    const two = await create(b, { argsSha: 'sha-2' });
    const three = await create(a, { tool: 'password_reset', tier: 'mfa', argsSha: 'sha-3', withVerifyLink: true });
    const four = await create(b, { argsSha: 'sha-4', ttlMs: 1 });
    expect(one.verifyToken).toBeTypeOf('string');
    expect(two.verifyToken).toBeUndefined();
    // Only the token's hash is stored.
    expect(one.row.verify_hash).not.toBe(one.verifyToken);
    expect(
      (await single(b.runner, (tx) => b.store.approvals.decide(tx, two.row.id, true, { name: 'x' }, '')))?.ok,
    ).toBe(true);
    expect(
      (await single(a.runner, (tx) => a.store.approvals.decide(tx, three.row.id, false, { name: 'y' }, undefined)))?.ok,
    ).toBe(true);
    await new Promise((r) => setTimeout(r, 20));

    const ids = (rows: { id: string }[]) => rows.map((r) => r.id).sort();
    // The default is pending; the past-due request expired on the way.
    expect(ids(await a.store.approvals.list())).toEqual([one.row.id]);
    expect(ids(await b.store.approvals.list(['approved', 'denied']))).toEqual(ids([two.row, three.row]));
    expect(ids(await a.store.approvals.list(['expired']))).toEqual([four.row.id]);
    expect(await a.store.approvals.list(['pending', 'approved', 'denied', 'expired'], 2)).toHaveLength(2);
    expect(await a.store.approvals.list([])).toEqual([]);
    const all = await a.store.approvals.list(['pending', 'approved', 'denied', 'expired']);
    expect(all.map((r) => r.created_at)).toEqual([...all.map((r) => r.created_at)].sort((x, y) => y - x));

    expect((await b.store.approvals.byVerifyToken(one.verifyToken!))?.id).toBe(one.row.id);
    expect((await b.store.approvals.byVerifyToken(three.verifyToken!))?.status).toBe('denied');
    expect(await b.store.approvals.byVerifyToken('not-a-token')).toBeUndefined();

    const counts = (await a.store.approvals.countsByClass())
      .map((c) => `${c.tool}/${c.tier}/${c.status}=${c.n}`)
      .sort();
    expect(counts).toEqual([
      'password_reset/mfa/denied=1',
      'ticket_create/approval/approved=1',
      'ticket_create/approval/expired=1',
      'ticket_create/approval/pending=1',
    ]);

    await single(b.runner, (tx) => b.store.approvals.consumeVerifyLink(tx, one.row.id));
    expect(await a.store.approvals.byVerifyToken(one.verifyToken!)).toBeUndefined();
    expect((await a.store.approvals.get(one.row.id))?.verify_hash).toBeNull();
    // A consumed link can be replaced by a fresh one (a retried call), which the console finds again.
    const fresh = await single(a.runner, (tx) => a.store.approvals.rotateVerifyLink(tx, one.row.id));
    expect((await b.store.approvals.byVerifyToken(fresh))?.id).toBe(one.row.id);
    answers[adapter.name]!.approvals = { counts };
  });

  it('budgets views: tasks, taskCounts, usage and breakers after trips; reset and resetTask clear them', async () => {
    const [a, b] = (await adapter.fresh(2)) as [Handle, Handle];
    let clock = T;
    const at = () => (clock += 1000);
    const admit = (h: Handle, principal: string, id: string, over: Partial<AdmitInput> = {}) =>
      single(h.runner, (tx) =>
        h.store.budgets.admit(tx, {
          principal,
          task: meta(id),
          user: undefined,
          rules: RULES,
          sig: undefined,
          polling: false,
          bounds,
          trippedTasksPerHour: 3,
          now: at(),
          ...over,
        }),
      );
    const settle = (h: Handle, principal: string, id: string, failed: boolean, resultBytes = 0, user?: string) =>
      single(h.runner, (tx) =>
        h.store.budgets.settle(tx, {
          principal,
          task: meta(id),
          user,
          rules: RULES,
          failed,
          resultBytes,
          now: clock,
        }),
      );

    // P: three tasks trip on identical calls (one id holds `\` and `0`); the third trips the principal.
    const trips = [];
    for (const id of ['a\\0', 'b', 'c']) {
      expect((await admit(a, P, id, { sig: 'same' })).ok).toBe(true);
      expect((await admit(b, P, id, { sig: 'same' })).ok).toBe(true);
      trips.push(await admit(a, P, id, { sig: 'same' }));
    }
    expect(trips.map((r) => !r.ok && r.kind === 'tripped' && r.fresh)).toEqual([true, true, true]);
    expect('fleet' in trips[2]! && trips[2].fleet?.rule).toBe('tripped_tasks_per_hour');
    // P2: a task with a user and a failure; another that trips on failures in a row.
    expect((await admit(a, P2, 'x', { user: 'alice' })).ok).toBe(true);
    await settle(a, P2, 'x', true, 100, 'alice');
    expect((await admit(b, P2, 'x', { user: 'alice' })).ok).toBe(true);
    for (let k = 0; k < 2; k++) {
      expect((await admit(b, P2, 'y')).ok).toBe(true);
      await settle(b, P2, 'y', true);
    }
    expect(await admit(a, P2, 'y')).toMatchObject({ ok: false, kind: 'tripped', level: 'task', fresh: true });
    const now = at();

    const views = a.store.budgets;
    const tasks = await views.tasks(IDLE, now);
    expect(tasks.map((t) => `${t.principal}/${t.id}`)).toEqual([P2 + '/y', P2 + '/x', P + '/c', P + '/b', P + '/a\\0']);
    expect(tasks.map((t) => t.trip?.rule ?? null)).toEqual([
      'max_consecutive_failures',
      null,
      'max_identical_calls',
      'max_identical_calls',
      'max_identical_calls',
    ]);
    expect((await views.tasks(IDLE, now, { tripped: true })).map((t) => t.id)).toEqual(['y', 'c', 'b', 'a\\0']);
    expect(await views.tasks(IDLE, now, { limit: 2 })).toEqual(tasks.slice(0, 2));
    expect(await views.tasks(1000, now)).toEqual([]);
    const x = await b.store.budgets.task(P2, meta('x'), IDLE, now);
    expect(x).toMatchObject({ principal: P2, source: 'meta', id: 'x', calls: 2, resultBytes: 100, streak: 1 });
    expect(x?.trip).toBeUndefined();
    expect((await b.store.budgets.task(P, meta('a\\0'), IDLE, now))?.trip?.rule).toBe('max_identical_calls');
    expect(await b.store.budgets.task(P, meta('a\\0'), IDLE, now + IDLE)).toBeUndefined();
    expect(await b.store.budgets.task(P, meta('none'), IDLE, now)).toBeUndefined();
    expect(await views.taskCounts(IDLE, now)).toEqual({ open: 5, tripped: 4 });

    const usage = await views.usage(RULES, now);
    const used = (name: string) =>
      usage
        .filter((u) => u.rule === name)
        .map((u) => `${u.scopeKey}=${u.used}`)
        .sort();
    expect(used('calls-p')).toEqual([`${P}=6`, `${P2}=4`]);
    expect(used('calls-t')).toContain(`task a\\0 (principal ${P})=2`);
    expect(used('calls-u')).toEqual(['user alice=2']);
    expect(used('fails-p')).toEqual([`${P2}=3`]);
    expect(usage[0]).toMatchObject({ window: 'hour', resetsAt: Date.parse('2026-03-01T11:00:00Z'), alarmAt: null });
    const mine = await b.store.budgets.usage(RULES, now, { principal: P2, task: meta('x'), user: 'alice' });
    expect(mine.map((u) => [u.rule, u.scopeKey, u.used])).toEqual([
      ['calls-p', P2, 4],
      ['calls-t', `task\u0000${P2}\u0000meta\u0000x`, 2],
      ['calls-u', 'user\u0000alice', 2],
      ['fails-p', P2, 3],
    ]);
    // A caller without a user has no per-user usage.
    expect((await views.usage(RULES, now, { principal: P })).map((u) => u.rule)).toEqual(['calls-p', 'fails-p']);

    const fleet = await views.breaker(P, now);
    expect(fleet).toMatchObject({
      principal: P,
      trippedTasks: 3,
      trip: { rule: 'tripped_tasks_per_hour', clearsAt: Date.parse('2026-03-01T11:00:00Z') },
    });
    expect(await views.breaker(P2, now)).toEqual({ principal: P2, trippedTasks: 1, trip: undefined });
    expect((await views.breakers(now)).map((br) => [br.principal, br.trippedTasks, !!br.trip])).toEqual([
      [P, 3, true],
      [P2, 1, false],
    ]);
    expect(await admit(a, P, 'fresh')).toMatchObject({ ok: false, kind: 'tripped', level: 'principal' });

    // reset: the principal's fleet breaker and this hour's count; its tasks stay tripped.
    const before = await single(b.runner, (tx) => b.store.budgets.reset(tx, P, now));
    expect(before).toEqual(fleet);
    expect(await views.breaker(P, now)).toEqual({ principal: P, trippedTasks: 0, trip: undefined });
    expect((await views.breakers(now)).map((br) => br.principal)).toEqual([P2]);
    expect((await admit(a, P, 'fresh')).ok).toBe(true);
    expect(await admit(a, P, 'b')).toMatchObject({ ok: false, kind: 'tripped', level: 'task' });

    // resetTask: the task's trip, streak and identical-call counts; the tasks as they were.
    const was = await single(a.runner, (tx) => a.store.budgets.resetTask(tx, 'a\\0', IDLE, clock));
    expect(was).toHaveLength(1);
    expect(was[0]).toMatchObject({ principal: P, id: 'a\\0', trip: { rule: 'max_identical_calls' } });
    expect((await views.task(P, meta('a\\0'), IDLE, clock))?.trip).toBeUndefined();
    expect((await admit(b, P, 'a\\0', { sig: 'same' })).ok).toBe(true);
    expect((await admit(b, P, 'a\\0', { sig: 'same' })).ok).toBe(true);
    expect(await admit(b, P, 'a\\0', { sig: 'same' })).toMatchObject({ ok: false, kind: 'tripped', fresh: true });
    const y = await single(b.runner, (tx) => b.store.budgets.resetTask(tx, 'y', IDLE, clock));
    expect(y.map((t) => [t.principal, t.streak, t.trip?.rule])).toEqual([[P2, 2, 'max_consecutive_failures']]);
    expect(await views.task(P2, meta('y'), IDLE, clock)).toMatchObject({ streak: 0, trip: undefined });
    expect(await single(a.runner, (tx) => a.store.budgets.resetTask(tx, 'nothing', IDLE, clock))).toEqual([]);
    expect(await views.taskCounts(IDLE, clock)).toEqual({ open: 6, tripped: 3 });

    answers[adapter.name]!.budgets = {
      tasks,
      usage,
      mine,
      fleet,
      breakers: await views.breakers(clock),
      was,
      y,
      after: await views.tasks(IDLE, clock),
      counts: await views.taskCounts(IDLE, clock),
    };
  });

  it('caps views: usage per scope key and when the window resets, in the policy time zone', async () => {
    const [a, b] = (await adapter.fresh(2)) as [Handle, Handle];
    const day = capRule('per-day', 'day');
    const hour = capRule('per-hour', 'hour');
    const reserve = (h: Handle, r: CapRule, scopeKey: string, amount: number, now = T) =>
      single(h.runner, (tx) => h.store.caps.reserve(tx, [{ rule: r, scopeKey, amount }], now));
    expect((await reserve(a, day, 'u\u0000x', 3)).ok).toBe(true);
    expect((await reserve(b, day, 'a\\b', 2)).ok).toBe(true);
    const gone = await reserve(b, day, 'gone\\0', 1);
    expect((await reserve(a, hour, '*', 4)).ok).toBe(true);
    // Yesterday's window does not count today.
    expect((await reserve(a, day, 'old', 5, T - 86_400_000)).ok).toBe(true);
    if (!gone.ok) throw new Error('not reserved');
    await single(a.runner, (tx) => a.store.caps.release(tx, gone.items));

    const usage = await b.store.caps.usage(day, T);
    expect(usage).toEqual([
      { scopeKey: 'u\u0000x', used: 3 },
      { scopeKey: 'a\\b', used: 2 },
    ]);
    expect(await a.store.caps.usage(hour, T)).toEqual([{ scopeKey: '*', used: 4 }]);
    expect(await a.store.caps.usage(day, T + 86_400_000)).toEqual([]);
    // Berlin's midnight is 23:00 UTC in winter; on the day DST starts, 22:00 UTC.
    expect(await a.store.caps.resetsAt(day, T)).toBe(Date.parse('2026-03-01T23:00:00Z'));
    expect(await a.store.caps.resetsAt(hour, T)).toBe(Date.parse('2026-03-01T11:00:00Z'));
    expect(await b.store.caps.resetsAt(day, Date.parse('2026-03-29T00:30:00Z'))).toBe(
      Date.parse('2026-03-29T22:00:00Z'),
    );
    answers[adapter.name]!.caps = { usage };
  });
});

describe('both adapters', () => {
  it('answer the same sequence alike', () => {
    expect(Object.keys(answers.postgres!).sort()).toEqual(['approvals', 'budgets', 'caps']);
    expect(answers.postgres).toEqual(answers.sqlite);
  });
});

describe('PostgreSQL only', () => {
  it('the kill switch: the setter sees its change without any read; the other replica by NOTIFY alone', async () => {
    const [a, b] = (await postgres.fresh(2)) as [Handle, Handle];
    const ka = (a.store as PgPorts).killSwitch;
    const kb = (b.store as PgPorts).killSwitch;
    expect(ka.state(60_000).engaged).toBe(false);
    expect(kb.state(60_000).engaged).toBe(false);
    const reads = kb.reads;
    const st = await setKillSwitch({ store: a.store, audit: a.runner }, true, 'incident', 'ops');
    // The view is brought up to date before setKillSwitch resolves: no caller's re-read is needed.
    expect(ka.state(60_000)).toEqual(st);
    // Only the cached view is read on the other replica (no polling): the notification brings the change.
    const ms = await until(() => kb.state(60_000).engaged, 1000, 'the other replica sees the switch by NOTIFY');
    expect(kb.reads).toBeGreaterThan(reads);
    console.log(`kill switch seen by the other replica after ${Math.round(ms)} ms`);
    const back = await setKillSwitch({ store: b.store, audit: b.runner }, false, 'resolved', 'ops');
    expect(kb.state(60_000)).toEqual(back);
    await until(() => !ka.state(60_000).engaged, 1000, 'the first replica sees the release by NOTIFY');
  });
});
