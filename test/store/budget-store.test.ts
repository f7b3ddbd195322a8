/** The task and budget store on its own: per-task bounds, the fleet breaker, user budgets, windows and idle tasks. */
import { describe, expect, it } from 'vitest';
import type { BudgetRule } from '../../src/policy/schema.js';
import { BudgetStore, type AdmitInput, type TaskBounds } from '../../src/store/sqlite/budget-store.js';
import { openDb } from '../../src/store/sqlite/db.js';
import type { TaskRef } from '../../src/guard/task.js';

const calls: BudgetRule = {
  name: 'calls',
  window: 'hour',
  per: 'principal',
  measure: 'calls',
  limit: 3,
  alarmAt: 2,
  tools: undefined,
};
const bounds: TaskBounds = {
  idleMs: 30 * 60_000,
  maxCalls: 40,
  maxMs: 30 * 60_000,
  maxResultBytes: 1000,
  maxIdenticalCalls: 2,
  maxConsecutiveFailures: 2,
};
const task = (id: string): TaskRef => ({ source: 'meta', id });
const T = Date.parse('2026-03-01T10:15:00Z');
const input = (over: Partial<AdmitInput> = {}): AdmitInput => ({
  principal: 'p',
  task: task('t1'),
  user: undefined,
  rules: [],
  sig: undefined,
  polling: false,
  bounds,
  trippedTasksPerHour: 3,
  now: T,
  ...over,
});
const settle = (b: BudgetStore, id: string, failed: boolean | undefined, now = T, resultBytes = 0) =>
  b.settle({ principal: 'p', task: task(id), user: undefined, rules: [], failed, resultBytes, now });

describe('BudgetStore', () => {
  it('reserves calls up to the limit, alarms once at alarm_at, and starts over in the next window', () => {
    const b = new BudgetStore(openDb(':memory:'), 'UTC');
    const r = [1, 2, 3, 4].map((i) => b.admit(input({ rules: [calls], now: T + i })));
    expect(r.map((x) => x.ok)).toEqual([true, true, true, false]);
    expect(r.flatMap((x) => (x.ok ? x.alarms : [])).map((a) => a.used)).toEqual([2]);
    expect(r[3]).toMatchObject({ kind: 'exhausted', used: 3, resetsAt: Date.parse('2026-03-01T11:00:00Z') });
    expect(b.admit(input({ rules: [calls], now: Date.parse('2026-03-01T11:00:00Z') })).ok).toBe(true);
  });

  it('trips a task after more than max_consecutive_failures failures; other tasks go on; a success ends the streak', () => {
    const b = new BudgetStore(openDb(':memory:'), 'UTC');
    b.admit(input());
    settle(b, 't1', true);
    settle(b, 't1', true);
    settle(b, 't1', false); // success: streak over
    settle(b, 't1', true);
    settle(b, 't1', true);
    settle(b, 't1', undefined); // waiting neither fails nor succeeds
    expect(b.admit(input({ now: T + 1 })).ok).toBe(true);
    settle(b, 't1', true);
    const tripped = b.admit(input({ now: T + 2 }));
    expect(tripped).toMatchObject({ ok: false, kind: 'tripped', level: 'task', fresh: true });
    expect(b.admit(input({ now: T + 3 }))).toMatchObject({ ok: false, level: 'task', fresh: false });
    // Another task of the same principal is not affected.
    expect(b.admit(input({ task: task('t2'), now: T + 4 })).ok).toBe(true);
    // Refused calls keep the task open; after idle_minutes without a call the id starts a new task.
    expect(b.admit(input({ now: T + bounds.idleMs }))).toMatchObject({ ok: false, level: 'task' });
    expect(b.admit(input({ now: T + 2 * bounds.idleMs + 3 })).ok).toBe(true);
  });

  it('counts identical calls per task: the same question from many tasks is not a loop', () => {
    const b = new BudgetStore(openDb(':memory:'), 'UTC');
    for (let i = 0; i < 25; i++) expect(b.admit(input({ task: task(`t${i}`), sig: 'same', now: T + i })).ok).toBe(true);
    const same = input({ task: task('loop'), sig: 'same' });
    expect([1, 2, 3].map((i) => b.admit({ ...same, now: T + 100 + i }).ok)).toEqual([true, true, false]);
    // The tripped task stays stopped for any call; reset --task clears it and its counts.
    expect(b.admit({ ...same, sig: 'other', now: T + 200 })).toMatchObject({ ok: false, fresh: false });
    expect(b.resetTask('loop', bounds.idleMs, T + 201).map((t) => t.trip?.rule)).toEqual(['max_identical_calls']);
    expect(b.admit({ ...same, now: T + 202 }).ok).toBe(true);
  });

  it('trips the principal when tripped_tasks_per_hour different tasks tripped this hour; reset clears it', () => {
    const b = new BudgetStore(openDb(':memory:'), 'UTC');
    const trip = (id: string, at: number) => {
      for (let i = 0; i < 3; i++) b.admit(input({ task: task(id), sig: 'x', now: at + i }));
      return b.admit(input({ task: task(id), sig: 'x', now: at + 3 }));
    };
    expect(trip('a', T)).toMatchObject({ level: 'task', fresh: false });
    expect(b.breaker('p', T + 10)).toMatchObject({ trippedTasks: 1, trip: undefined });
    expect(b.admit(input({ task: task('healthy'), now: T + 11 })).ok).toBe(true);
    trip('b', T + 20);
    const third = (() => {
      for (let i = 0; i < 2; i++) b.admit(input({ task: task('c'), sig: 'x', now: T + 30 + i }));
      return b.admit(input({ task: task('c'), sig: 'x', now: T + 33 }));
    })();
    expect(third).toMatchObject({ ok: false, level: 'task', fresh: true, fleet: { rule: 'tripped_tasks_per_hour' } });
    expect(b.admit(input({ task: task('healthy'), now: T + 40 }))).toMatchObject({ ok: false, level: 'principal' });
    expect(b.reset('p', T + 50).trip?.rule).toBe('tripped_tasks_per_hour');
    expect(b.admit(input({ task: task('healthy'), now: T + 51 })).ok).toBe(true);
    // Other principals never noticed.
    expect(b.breaker('q', T + 52)).toMatchObject({ trippedTasks: 0, trip: undefined });
  });

  it('bounds a task by calls, minutes and result bytes; polling calls do not spend its calls', () => {
    const b = new BudgetStore(openDb(':memory:'), 'UTC');
    const small = { ...bounds, maxCalls: 2 };
    expect(b.admit(input({ bounds: small })).ok).toBe(true);
    expect(b.admit(input({ bounds: small, polling: true })).ok).toBe(true);
    expect(b.admit(input({ bounds: small })).ok).toBe(true);
    expect(b.admit(input({ bounds: small }))).toMatchObject({ kind: 'task_exhausted', bound: 'max_calls', used: 2 });
    expect(b.admit(input({ bounds: small, polling: true })).ok).toBe(true);
    expect(b.admit(input({ task: task('m'), now: T })).ok).toBe(true);
    expect(b.admit(input({ task: task('m'), now: T + bounds.maxMs - 1 })).ok).toBe(true);
    expect(b.admit(input({ task: task('m'), now: T + bounds.maxMs }))).toMatchObject({ bound: 'max_minutes' });
    b.admit(input({ task: task('bytes') }));
    settle(b, 'bytes', false, T, 1000);
    expect(b.admit(input({ task: task('bytes') }))).toMatchObject({ bound: 'max_result_bytes', used: 1000 });
  });

  it('per: user rules count the person across tasks and skip calls without a user', () => {
    const b = new BudgetStore(openDb(':memory:'), 'UTC');
    const perUser: BudgetRule = { ...calls, name: 'user-calls', per: 'user', limit: 2, alarmAt: undefined };
    const a = (id: string, user: string | undefined) => b.admit(input({ task: task(id), user, rules: [perUser] }));
    expect([a('t1', 'alice'), a('t2', 'alice'), a('t3', 'alice')].map((r) => r.ok)).toEqual([true, true, false]);
    expect(a('t4', 'bob').ok).toBe(true);
    expect(a('t5', undefined).ok).toBe(true);
    expect(b.usage([perUser], T).map((u) => u.scopeKey)).toEqual(['user alice', 'user bob']);
  });

  it('lists open tasks and counts them for the gauges', () => {
    const b = new BudgetStore(openDb(':memory:'), 'UTC');
    for (let i = 0; i < 5; i++) b.admit(input({ task: task(`t${i}`), now: T + i }));
    expect(b.taskCounts(bounds.idleMs, T + 10)).toEqual({ open: 5, tripped: 0 });
    expect(b.tasks(bounds.idleMs, T + 10, { limit: 2 }).map((t) => t.id)).toEqual(['t4', 't3']);
    expect(b.taskCounts(bounds.idleMs, T + bounds.idleMs + 3)).toEqual({ open: 1, tripped: 0 });
  });
});
