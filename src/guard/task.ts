/**
 * Tasks (DESIGN §3 step 4): the unit the per-task bounds count in — one conversation or job of the agent. A call's
 * task is identified once, when the call arrives, first match wins in the policy's `task.identify` order:
 *  - `meta`: the request's `_meta["io.itguard/task"]`, else the HTTP header `Itguard-Task` (set by the client or the
 *    agent controller, never by the model: tool arguments cannot set it);
 *  - `session`: the 2025-11-25 session, or the stdio connection (either era);
 *  - `user`: the OAuth user the agent acts for (`on_behalf_of_id`);
 *  - else the principal itself is the task.
 * A malformed meta id is not silently replaced: the call is identified by the next rule (so it still counts) and
 * refused INVALID_ARGUMENT naming the field (budget step).
 */
import type { TaskSource } from '../policy/schema.js';
import type { TaskRef } from '../store/task-key.js';

export { taskKey, type TaskRef } from '../store/task-key.js';

export const TASK_META_KEY = 'io.itguard/task';
/** Lower-case, as node's `IncomingMessage.headers` has it. */
export const TASK_HEADER = 'itguard-task';
const TASK_ID = /^[A-Za-z0-9._:-]{1,128}$/;

/** What the transport knows about the call, for identification. */
export interface TaskClues {
  principal: string;
  /** `_meta["io.itguard/task"]` of the request, as sent (validated here). */
  meta: unknown;
  /** The `Itguard-Task` header of the HTTP request, as sent. */
  header: unknown;
  /** The 2025-11-25 session or the stdio connection. */
  connection: string | undefined;
  /** The OAuth user (`on_behalf_of_id`). */
  user: string | undefined;
}

export interface Identified {
  task: TaskRef;
  /** A meta id was sent but is malformed: the refusal's message, naming the field and the rule. */
  invalid?: string;
}

export function identifyTask(order: readonly TaskSource[], c: TaskClues): Identified {
  let invalid: string | undefined;
  for (const source of order) {
    if (source === 'meta') {
      const [value, field] =
        c.meta !== undefined ? [c.meta, `_meta["${TASK_META_KEY}"]`] : [c.header, 'the Itguard-Task header'];
      if (value === undefined) continue;
      if (typeof value === 'string' && TASK_ID.test(value)) return { task: { source, id: value } };
      invalid = `${field} must be 1..128 characters of A-Z a-z 0-9 . _ : - (got ${describe(value)})`;
      continue;
    }
    if (source === 'session' && c.connection !== undefined)
      return withInvalid({ source, id: `session:${c.connection}` }, invalid);
    if (source === 'user' && c.user !== undefined) return withInvalid({ source, id: `user:${c.user}` }, invalid);
  }
  return withInvalid({ source: 'principal', id: `principal:${c.principal}` }, invalid);
}

const withInvalid = (task: TaskRef, invalid: string | undefined): Identified =>
  invalid === undefined ? { task } : { task, invalid };

function describe(v: unknown): string {
  if (typeof v !== 'string') return `a ${Array.isArray(v) ? 'list' : v === null ? 'null' : typeof v}`;
  if (v.length === 0) return 'an empty string';
  if (v.length > 128) return `${v.length} characters`;
  return 'a character outside that set';
}
