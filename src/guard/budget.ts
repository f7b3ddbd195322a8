/**
 * Tasks, budgets and the breakers (DESIGN §3 step 4). Every call counts, whatever its outcome: this step sits before
 * scope and validation, so an unknown tool, a scope refusal, invalid or denied arguments spend budget and extend the
 * failure streak exactly like a call that ran, and a tripped breaker or a spent budget refuses before anything else
 * is looked at. Three levels, all decided in the store in one admission transaction (store/budget-store.ts):
 *  - the task (`task:`): the call's conversation or job, identified when the call arrived (guard/task.ts): its
 *    calls, minutes since its first call, result bytes, identical calls and failures in a row. A tripped task
 *    refuses that task only;
 *  - windowed `budgets` per principal, per user (the OAuth human; a runaway that invents task ids or reconnects is
 *    still bounded per person) and per task;
 *  - the principal's fleet breaker (`loop.tripped_tasks_per_hour`): trips the whole principal only when that many
 *    different tasks tripped within the hour, with an alarm.
 * What does not count: refusals by this step itself and by the kill switch (nothing was evaluated; counting them
 * could never admit more), and waiting (APPROVAL_PENDING, IN_PROGRESS) neither fails nor ends a failure streak.
 * Polling tools (request_status, guard_status, which refusals tell the agent to call) are exempt from identical-
 * call counting and from the task's call count; they stay under every windowed budget.
 */
import type { CallToolResult } from '@modelcontextprotocol/server';
import { actionArgs, canonicalJson, sha256 } from '../canonical.js';
import type { BudgetRule, Policy } from '../policy/schema.js';
import type { AdmitResult, BudgetAlarm, TaskBounds, Trip } from '../store/budget-store.js';
import { describeScopeKey } from '../store/budget-store.js';
import type { CallTail } from './audit-writer.js';
import { raiseAlarm } from './alarm.js';
import type { GuardDeps } from './deps.js';
import { errorCodeOf, GuardError, type ErrorCode } from '../core/errors.js';
import type { Call, Guard } from './types.js';

type Settled = { alarms: BudgetAlarm[] };

/** Outcomes that are neither a failure nor a success: a paused system, a pending human, a running twin. */
const WAITING = new Set<ErrorCode | undefined>(['KILL_SWITCH_ENGAGED', 'APPROVAL_PENDING', 'IN_PROGRESS']);

export function resultBytes(r: { content?: unknown; structuredContent?: unknown }): number {
  return Buffer.byteLength(JSON.stringify([r.content ?? null, r.structuredContent ?? null]));
}

/** The identity of "the same call": tool and canonical action arguments (reason and idempotency_key excluded). */
export function callSignature(call: Call): string {
  const raw = call.rawArgs;
  try {
    const args =
      raw && typeof raw === 'object' && !Array.isArray(raw) ? actionArgs(raw as Record<string, unknown>) : raw;
    return sha256(`${call.tool.name}\u0000${canonicalJson(args)}`);
  } catch {
    // Arguments too deep or too odd to canonicalise are refused by validation; repeats of them still count as one call.
    return sha256(`${call.tool.name}\u0000(unhashable)`);
  }
}

/** The budget rules each tool counts toward, computed once per tool name (unknown names: the unnarrowed rules). */
function rulesByTool(rules: readonly BudgetRule[]): (tool: string) => BudgetRule[] {
  const cache = new Map<string, BudgetRule[]>();
  const unnarrowed = rules.filter((r) => !r.tools);
  for (const r of rules)
    for (const t of r.tools ?? [])
      cache.set(
        t,
        rules.filter((x) => !x.tools || x.tools.includes(t)),
      );
  return (tool) => cache.get(tool) ?? unnarrowed;
}

const loopDetected = (message: string, details: Record<string, unknown>, next?: string) =>
  new GuardError('LOOP_DETECTED', message, next === undefined ? { details } : { details, next });

/** The per-task bounds in the store's units; a tool may narrow identical calls and failures in a row. */
export function taskBounds(policy: Pick<Policy, 'task'>, call: Pick<Call, 'toolPolicy'>): TaskBounds {
  const t = policy.task;
  return {
    idleMs: t.idleMinutes * 60_000,
    maxCalls: t.maxCalls,
    maxMs: t.maxMinutes * 60_000,
    maxResultBytes: t.maxResultBytes,
    maxIdenticalCalls: call.toolPolicy.maxIdenticalCalls,
    maxConsecutiveFailures: call.toolPolicy.maxConsecutiveFailures,
  };
}

const iso = (ms: number) => new Date(ms).toISOString();

function trippedError(call: Call, level: 'principal' | 'task', trip: Trip, idleMinutes: number): GuardError {
  if (level === 'principal') {
    const clears = iso(trip.clearsAt ?? 0);
    return loopDetected(
      `The fleet breaker stopped every call of principal ${call.principal.name}: ${trip.why}. It clears at ${clears}, or when IT resets it (itguard breaker reset ${call.principal.name}).`,
      { rule: trip.rule, level, tripped_at: iso(trip.trippedAt), clears_at: clears },
      `Many conversations of this agent are failing at once; IT has been alerted. Tell the user to try again after ${clears}.`,
    );
  }
  return new GuardError(
    'LOOP_DETECTED',
    `The loop breaker stopped task ${call.task.id}: ${trip.why}. Other tasks are not affected. This task stays stopped until it has been idle ${idleMinutes} minutes or IT resets it.`,
    {
      details: {
        rule: trip.rule,
        level,
        task: call.task.id,
        task_source: call.task.source,
        tripped_at: iso(trip.trippedAt),
        clears_at: null,
      },
      next: 'Stop repeating this call. Tell the user what failed and what you tried; do not retry in this task.',
    },
  );
}

const TASK_BOUND_WHAT = {
  max_calls: 'calls',
  max_minutes: 'minutes',
  max_result_bytes: 'result bytes',
} as const;

function refusal(call: Call, deps: Pick<GuardDeps, 'policy'>, r: Exclude<AdmitResult, { ok: true }>): GuardError {
  const idle = deps.policy.task.idleMinutes;
  if (r.kind === 'tripped') return trippedError(call, r.level, r.trip, idle);
  if (r.kind === 'task_exhausted') {
    const what = TASK_BOUND_WHAT[r.bound];
    return new GuardError(
      'BUDGET_EXHAUSTED',
      `Task ${call.task.id} has used its ${what}: ${r.used}/${r.limit} (task.${r.bound}). A task is one conversation or job; this one has done what one task may.`,
      {
        details: {
          budget: r.bound,
          level: 'task',
          task: call.task.id,
          task_source: call.task.source,
          used: r.used,
          limit: r.limit,
          started_at: iso(r.startedAt),
          resets_at: null,
        },
        next: `Summarise progress for the user and stop. A new task starts after ${idle} idle minutes, or when the user starts a new conversation.`,
      },
    );
  }
  const rule = r.rule;
  const resets = iso(r.resetsAt);
  const whose =
    rule.per === 'principal'
      ? `principal ${call.principal.name}`
      : rule.per === 'user'
        ? `the user ${call.principal.onBehalfOf ?? describeScopeKey(r.scopeKey)}`
        : `task ${call.task.id}`;
  return new GuardError(
    'BUDGET_EXHAUSTED',
    `Budget "${rule.name}" is used up for ${whose}: ${r.used}/${rule.limit} ${rule.measure.replace('_', ' ')} this ${rule.window}; it resets at ${resets}.`,
    {
      details: {
        budget: rule.name,
        level: rule.per,
        ...(rule.per === 'task' ? { task: call.task.id } : {}),
        measure: rule.measure,
        used: r.used,
        limit: rule.limit,
        window: rule.window,
        resets_at: resets,
      },
      next: `Summarise progress for the user and stop; do not call again before ${resets}.`,
    },
  );
}

export const budget = (deps: Pick<GuardDeps, 'policy' | 'log' | 'audit' | 'metrics' | 'now' | 'budgets'>): Guard => {
  const rulesFor = rulesByTool(deps.policy.budgets);
  return (next) =>
    async function budgetGuard(call) {
      const polling = call.tool.polling === true;
      const rules = rulesFor(call.tool.name);
      // Security: the task, user and principal bounds are decided in the store, atomically; an error here (store
      // busy, unreadable) propagates and the call is refused (fail closed).
      const admitted = deps.budgets.admit({
        principal: call.principal.name,
        task: call.task,
        user: call.principal.onBehalfOfId,
        rules,
        // A 2026-07-28 retry that carries a requestState continues the call it answers (MRTR), it does not repeat it:
        // it still counts as a call, and a bad state fails like any refusal.
        sig: polling || call.resume?.state !== undefined ? undefined : callSignature(call),
        polling,
        bounds: taskBounds(deps.policy, call),
        trippedTasksPerHour: deps.policy.loop.trippedTasksPerHour,
        now: deps.now(),
      });
      if (!admitted.ok) {
        if (admitted.kind === 'tripped' && admitted.fresh) {
          await alarmTaskTrip(deps, call, admitted.trip);
          if (admitted.fleet) await alarmFleetTrip(deps, call, admitted.fleet);
        }
        throw refusal(call, deps, admitted);
      }
      await budgetAlarms(deps, call, admitted.alarms);

      // The call's tail: the steps inside queue what they write after the call (its outcome record, the idempotency
      // result); the settle joins them, and all of it commits as one unit of the audit writer's batch.
      const tail: CallTail = { events: [], writes: [] };
      call.state.tail = tail;
      let result: CallToolResult | undefined;
      let code: ErrorCode | undefined;
      let thrown: { e: unknown } | undefined;
      try {
        // A malformed task id counts (in the task the call fell back to) and is refused like invalid arguments.
        if (call.taskInvalid !== undefined)
          throw new GuardError('INVALID_ARGUMENT', `Invalid task id: ${call.taskInvalid}.`, {
            details: { field: call.taskInvalid.split(' must ')[0] },
            next: 'The client or agent controller sets the task id; fix it there. Do not retry this call as it is.',
          });
        result = await next(call);
        code = errorCodeOf(result);
      } catch (e) {
        code = e instanceof GuardError ? e.code : 'INTERNAL';
        thrown = { e };
      }
      call.state.tail = undefined; // what is written from here on (alarms, the denial audit) is written on its own
      const failed = WAITING.has(code) ? undefined : result ? !!result.isError : true;
      const bytes = result ? resultBytes(result) : 0;
      const settled = settleIn(tail, deps, call, rules, failed, bytes);
      try {
        await deps.audit.commit(tail);
      } catch (e) {
        // The call's outcome record could not be written: a refusal still refuses; a result is not returned
        // without its record (INTERNAL; the idempotency record stays in flight, and a retry asks the backend).
        deps.log.error({ err: e, trace_id: call.traceId }, 'could not write the records of a call after it ran');
        if (!thrown) throw e;
      }
      if (settled.value) await budgetAlarms(deps, call, settled.value.alarms);
      if (thrown) throw thrown.e;
      return result!;
    };
};

/**
 * After the call: failures, result bytes and the task's failure streak, queued in the call's tail. A store error is
 * logged, not raised (the settle runs in its own savepoint): the call's own outcome stands.
 */
function settleIn(
  tail: CallTail,
  deps: Pick<GuardDeps, 'policy' | 'log' | 'now' | 'budgets'>,
  call: Call,
  rules: BudgetRule[],
  failed: boolean | undefined,
  bytes: number,
): { value?: Settled } {
  const out: { value?: Settled } = {};
  const input = {
    principal: call.principal.name,
    task: call.task,
    user: call.principal.onBehalfOfId,
    rules,
    failed,
    resultBytes: bytes,
    now: deps.now(),
  };
  tail.writes.push(() => {
    try {
      out.value = deps.budgets.settle(input);
    } catch (e) {
      deps.log.error({ err: e, trace_id: call.traceId }, 'could not record a call against the task and budgets');
    }
  });
  return out;
}

const alarmTaskTrip = (deps: Pick<GuardDeps, 'log' | 'audit' | 'metrics'>, call: Call, trip: Trip) =>
  raiseAlarm(deps, call, {
    kind: 'LOOP_DETECTED',
    rule: trip.rule,
    message: `loop breaker tripped for task ${call.task.id} of principal ${call.principal.name}: ${trip.why}`,
    detail: { level: 'task', task: call.task.id },
  });

const alarmFleetTrip = (deps: Pick<GuardDeps, 'log' | 'audit' | 'metrics'>, call: Call, trip: Trip) =>
  raiseAlarm(deps, call, {
    kind: 'LOOP_DETECTED',
    rule: trip.rule,
    message: `fleet breaker tripped for principal ${call.principal.name}: ${trip.why}; every task of the principal is stopped until ${iso(trip.clearsAt ?? 0)}`,
    detail: { level: 'principal', clears_at: iso(trip.clearsAt ?? 0) },
  });

async function budgetAlarms(
  deps: Pick<GuardDeps, 'log' | 'audit' | 'metrics'>,
  call: Call,
  alarms: BudgetAlarm[],
): Promise<void> {
  for (const a of alarms) {
    await raiseAlarm(deps, call, {
      kind: 'BUDGET_ALARM',
      rule: a.rule.name,
      message: `budget ${a.rule.name} crossed its alarm level for ${describeScopeKey(a.scopeKey)}: ${a.used}/${a.rule.limit} ${a.rule.measure} (alarm_at ${a.rule.alarmAt})`,
      detail: { used: a.used, limit: a.rule.limit, alarm_at: a.rule.alarmAt, per: a.rule.per, measure: a.rule.measure },
    });
  }
}
