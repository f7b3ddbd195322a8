/**
 * Clearing a breaker by hand (DESIGN §7 `itguard breaker reset PRINCIPAL | --task ID`, the admin API's breaker
 * reset): one implementation, so the CLI and the admin API clear the same state and write the same audit records.
 */
import type { AuditStore } from '../store/sqlite/audit-store.js';
import type { BreakerState, BudgetStore, TaskState } from '../store/sqlite/budget-store.js';

interface Stores {
  budgets: BudgetStore;
  auditStore: AuditStore;
}

/** Clears a principal's fleet breaker and this hour's count of tripped tasks; audited with `actor`. */
export function resetPrincipalBreaker(s: Stores, principal: string, actor: string, now: number): BreakerState {
  const before = s.budgets.reset(principal, now);
  s.auditStore.append({
    event: 'breaker.reset',
    actor,
    detail: {
      level: 'principal',
      principal,
      was: before.trip ? { rule: before.trip.rule, why: before.trip.why } : 'ok',
      tripped_tasks_this_hour: before.trippedTasks,
    },
  });
  return before;
}

/** Clears the breaker of every open task with this id (trip, streak, identical counts); one audit record each. */
export function resetTaskBreaker(s: Stores, task: string, idleMs: number, actor: string, now: number): TaskState[] {
  const was = s.budgets.resetTask(task, idleMs, now);
  if (was.length)
    s.auditStore.append(
      ...was.map((t) => ({
        event: 'breaker.reset',
        actor,
        taskId: t.id,
        detail: {
          level: 'task',
          principal: t.principal,
          task: t.id,
          was: t.trip ? { rule: t.trip.rule, why: t.trip.why } : 'ok',
          failures_in_a_row: t.streak,
        },
      })),
    );
  return was;
}
