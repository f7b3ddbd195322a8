/**
 * What the store knows of a task (DESIGN §3 step 4): how it was identified and its id, and the key its state is kept
 * under. Identification itself (which request field names a task) is the guard's: src/guard/task.ts.
 */
import type { TaskSource } from '../policy/schema.js';

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
