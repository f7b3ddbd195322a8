/**
 * Tasks, budgets and breakers as operators see and clear them on PostgreSQL (BudgetsViews' reads and writes; PgBudgets
 * in budgets.ts answers with these), with sqlite/budget-store.ts's shapes and rules: open tasks are those with a call
 * within `idleMs`, newest first; a windowed rule's usage is of its current window in the policy time zone; a breaker
 * is the principal's fleet trip in force and this hour's count of tripped tasks.
 *
 * Keys are stored in `pgKey` form (runner.ts): a scope key read back is mapped to the key callers know (`unPgKey`)
 * before it is described. Task states carry the principal, source and id of their own columns, never the key.
 */
import type { BudgetRule } from '../../policy/schema.js';
import { windowEnd, windowStart } from '../../windows.js';
import type { BreakerState, BudgetUsage, TaskState, Trip, TripRule } from '../ports/types.js';
import { budgetScopeKey, describeScopeKey, taskKey, type TaskRef } from '../task-key.js';
import { pgKey, type Q, unPgKey } from './runner.js';

/** A `tasks` row. */
export interface TaskRow {
  task_key: string;
  principal: string;
  source: string;
  id: string;
  started_at: number;
  last_call_at: number;
  calls: number;
  result_bytes: number;
  streak: number;
  tripped_rule: TripRule | null;
  tripped_why: string | null;
  tripped_at: number | null;
}

/** A `breaker` row's trip, as admit reads it joined with the task. */
export interface Breaker {
  b_rule: TripRule | null;
  b_why: string | null;
  b_at: number | null;
  b_clears: number | null;
}

export const tripOfTask = (r: TaskRow): Trip | undefined =>
  r.tripped_rule
    ? { rule: r.tripped_rule, why: r.tripped_why ?? '', trippedAt: r.tripped_at ?? 0, clearsAt: null }
    : undefined;

export const activeTrip = (b: Breaker | undefined, now: number): Trip | undefined =>
  !b?.b_rule || (b.b_clears ?? 0) <= now
    ? undefined
    : { rule: b.b_rule, why: b.b_why ?? '', trippedAt: b.b_at ?? 0, clearsAt: b.b_clears ?? 0 };

export const stateOf = (r: TaskRow): TaskState => ({
  principal: r.principal,
  source: r.source as TaskRef['source'],
  id: r.id,
  startedAt: r.started_at,
  lastCallAt: r.last_call_at,
  calls: r.calls,
  resultBytes: r.result_bytes,
  streak: r.streak,
  trip: tripOfTask(r),
});

export async function breakerOf(q: Q, principal: string): Promise<Breaker | undefined> {
  const [b] = await q<Breaker[]>`SELECT tripped_rule AS b_rule, tripped_why AS b_why, tripped_at AS b_at,
    clears_at AS b_clears FROM breaker WHERE principal = ${principal}`;
  return b;
}

/** Open tasks (a call within `idleMs`), most recent first. */
export async function openTasks(
  q: Q,
  idleMs: number,
  now: number,
  o: { tripped?: boolean; limit?: number } = {},
): Promise<TaskRow[]> {
  return q<TaskRow[]>`SELECT * FROM tasks WHERE last_call_at > ${now - idleMs}
    ${o.tripped ? q`AND tripped_rule IS NOT NULL` : q``}
    ORDER BY last_call_at DESC LIMIT ${o.limit ?? 1_000_000}`;
}

/** One task as it stands now; undefined when it has no state or has ended. */
export async function openTask(
  q: Q,
  principal: string,
  t: TaskRef,
  idleMs: number,
  now: number,
): Promise<TaskState | undefined> {
  const [row] = await q<TaskRow[]>`SELECT * FROM tasks WHERE task_key = ${pgKey(taskKey(principal, t))}`;
  return row && now - row.last_call_at < idleMs ? stateOf(row) : undefined;
}

/** Open tasks and how many of them are tripped (the gauges). */
export async function taskCounts(q: Q, idleMs: number, now: number): Promise<{ open: number; tripped: number }> {
  const [r] = await q<{ open: number; tripped: number }[]>`SELECT count(*)::INTEGER AS open,
    (count(*) FILTER (WHERE tripped_rule IS NOT NULL))::INTEGER AS tripped
    FROM tasks WHERE last_call_at > ${now - idleMs}`;
  return { open: r?.open ?? 0, tripped: r?.tripped ?? 0 };
}

/** Usage of each rule in its current window: for one caller, or the busiest keys of every scope. */
export async function usage(
  q: Q,
  tz: string,
  rules: readonly BudgetRule[],
  now: number,
  who?: { principal: string; task?: TaskRef | undefined; user?: string | undefined },
): Promise<BudgetUsage[]> {
  const out: BudgetUsage[] = [];
  for (const rule of rules) {
    const start = windowStart(rule.window, now, tz);
    const base = {
      rule: rule.name,
      measure: rule.measure,
      per: rule.per,
      window: rule.window,
      limit: rule.limit,
      alarmAt: rule.alarmAt ?? null,
      resetsAt: windowEnd(rule.window, now, tz),
    };
    if (who) {
      const scopeKey = budgetScopeKey(rule, who);
      if (scopeKey === undefined) continue;
      const [u] = await q<{ used: number }[]>`SELECT used FROM budget_usage WHERE rule = ${rule.name}
        AND scope_key = ${pgKey(scopeKey)} AND window_start = ${start}`;
      out.push({ ...base, scopeKey, used: u?.used ?? 0 });
      continue;
    }
    const rows = await q<{ scope_key: string; used: number }[]>`SELECT scope_key, used FROM budget_usage
      WHERE rule = ${rule.name} AND window_start = ${start} AND used > 0 ORDER BY used DESC LIMIT 1000`;
    for (const r of rows) out.push({ ...base, scopeKey: describeScopeKey(unPgKey(r.scope_key)), used: r.used });
  }
  return out;
}

/** The principal's fleet trip in force and this hour's count of different tripped tasks. */
export async function breaker(q: Q, tz: string, principal: string, now: number): Promise<BreakerState> {
  const [c] = await q<{ n: number }[]>`SELECT count(*)::INTEGER AS n FROM breaker_tasks
    WHERE principal = ${principal} AND window_start = ${windowStart('hour', now, tz)}`;
  return { principal, trippedTasks: c?.n ?? 0, trip: activeTrip(await breakerOf(q, principal), now) };
}

/** Every principal with a fleet trip in force or a tripped task this hour. */
export async function breakers(q: Q, tz: string, now: number): Promise<BreakerState[]> {
  const rows = await q<{ principal: string }[]>`SELECT principal FROM breaker WHERE tripped_rule IS NOT NULL
    UNION SELECT principal FROM breaker_tasks WHERE window_start = ${windowStart('hour', now, tz)}
    ORDER BY principal`;
  const out: BreakerState[] = [];
  for (const r of rows) {
    const b = await breaker(q, tz, r.principal, now);
    if (b.trippedTasks > 0 || b.trip) out.push(b);
  }
  return out;
}

/**
 * Clears the principal's fleet breaker and this hour's count of tripped tasks, under the breaker row's lock (the one
 * a task trip takes before counting). Tripped tasks stay tripped. The state before, for the audit.
 */
export async function resetBreaker(tx: Q, tz: string, principal: string, now: number): Promise<BreakerState> {
  await tx`SELECT 1 FROM breaker WHERE principal = ${principal} FOR UPDATE`;
  const before = await breaker(tx, tz, principal, now);
  await tx`UPDATE breaker SET streak = 0, tripped_rule = NULL, tripped_why = NULL, tripped_at = NULL,
    clears_at = NULL WHERE principal = ${principal}`;
  await tx`DELETE FROM breaker_tasks WHERE principal = ${principal}
    AND window_start >= ${windowStart('hour', now, tz)}`;
  return before;
}

/**
 * Clears the breaker (trip, failure streak, identical-call counts) of every open task with this id, of any
 * principal, under the task rows' locks (the ones admit takes). The tasks as they were, for the audit.
 */
export async function resetTask(tx: Q, id: string, idleMs: number, now: number): Promise<TaskState[]> {
  const rows = await tx<TaskRow[]>`SELECT * FROM tasks WHERE id = ${id} AND last_call_at > ${now - idleMs}
    ORDER BY last_call_at DESC FOR UPDATE`;
  for (const r of rows) {
    await tx`UPDATE tasks SET streak = 0, tripped_rule = NULL, tripped_why = NULL, tripped_at = NULL
      WHERE task_key = ${r.task_key}`;
    await tx`DELETE FROM task_identical WHERE task_key = ${r.task_key} AND task_started = ${r.started_at}`;
  }
  return rows.map(stateOf);
}
