/**
 * What the store knows of a task (DESIGN §3 step 4): how it was identified and its id, and the key its state is kept
 * under. Identification itself (which request field names a task) is the guard's: src/guard/task.ts.
 */
import type { BudgetRule, TaskSource } from '../policy/schema.js';

export interface TaskRef {
  /** How the task was identified. */
  source: TaskSource | 'principal';
  /**
   * The task's id as operators see it (`itguard tasks`, `audit show --task`): the id a client sent as is; otherwise
   * `session:<id>`, `user:<on_behalf_of_id>` or `principal:<name>`. Unique per principal together with `source`.
   */
  id: string;
}

/** The store's key of a task: tasks of different principals never share state. */
export const taskKey = (principal: string, t: TaskRef): string => `${principal}\u0000${t.source}\u0000${t.id}`;

/** Where a windowed rule counts: the principal's name (as before tasks), the user, or the task. */
export function budgetScopeKey(
  rule: Pick<BudgetRule, 'per'>,
  who: { principal: string; task?: TaskRef | undefined; user?: string | undefined },
): string | undefined {
  if (rule.per === 'principal') return who.principal;
  if (rule.per === 'user') return who.user === undefined ? undefined : `user\u0000${who.user}`;
  return who.task === undefined ? undefined : `task\u0000${taskKey(who.principal, who.task)}`;
}

/** A scope key as people read it. */
export function describeScopeKey(k: string): string {
  if (k.startsWith('user\u0000')) return `user ${k.slice(5)}`;
  if (k.startsWith('task\u0000')) {
    const [principal, , id] = k.slice(5).split('\u0000');
    return `task ${id ?? '?'} (principal ${principal ?? '?'})`;
  }
  return k;
}
