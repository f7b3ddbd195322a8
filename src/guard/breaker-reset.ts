/**
 * Clearing a breaker by hand (DESIGN §7 `itguard breaker reset PRINCIPAL | --task ID`, the admin API's breaker
 * reset): one implementation, so the CLI and the admin API clear the same state and write the same audit records,
 * each reset and its records in one unit of work.
 */
import type { AuditPort, BreakerState, BudgetsViews, TaskState } from '../store/ports/index.js';
import { andThen, UnitOfWork } from '../store/unit.js';

interface Deps {
  store: { budgets: BudgetsViews };
  audit: AuditPort;
}

/** Clears a principal's fleet breaker and this hour's count of tripped tasks; audited with `actor`. */
export async function resetPrincipalBreaker(
  deps: Deps,
  principal: string,
  actor: string,
  now: number,
): Promise<BreakerState> {
  const u = new UnitOfWork('single');
  u.strict = true;
  let before: BreakerState | undefined;
  const p = u.add((tx) => andThen(deps.store.budgets.reset(tx, principal, now), (b) => (before = b)));
  void deps.audit.append(u, () => [
    {
      event: 'breaker.reset',
      actor,
      detail: {
        level: 'principal',
        principal,
        was: before!.trip ? { rule: before!.trip.rule, why: before!.trip.why } : 'ok',
        tripped_tasks_this_hour: before!.trippedTasks,
      },
    },
  ]);
  await deps.audit.commit(u);
  return p;
}

/** Clears the breaker of every open task with this id (trip, streak, identical counts); one audit record each. */
export async function resetTaskBreaker(
  deps: Deps,
  task: string,
  idleMs: number,
  actor: string,
  now: number,
): Promise<TaskState[]> {
  const u = new UnitOfWork('single');
  u.strict = true;
  let was: TaskState[] = [];
  const p = u.add((tx) => andThen(deps.store.budgets.resetTask(tx, task, idleMs, now), (w) => (was = w)));
  void deps.audit.append(u, () =>
    was.map((t) => ({
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
  await deps.audit.commit(u);
  return p;
}
