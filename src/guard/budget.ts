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
import type { AdmitResult, BudgetAlarm, TaskBounds, Trip } from '../store/ports/index.js';
import { describeScopeKey } from '../store/task-key.js';
import { raiseAlarm } from './alarm.js';
import type { GuardDeps } from './deps.js';
import { GuardError, type ErrorCode } from '../core/errors.js';
import type { Call, Guard } from './types.js';
import { andThen, UnitOfWork } from '../store/unit.js';

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

/**
 * How long a precheck that found a task's bounds open is trusted for its next calls (ms). The precheck only refuses
 * early; the admit decides every call, and a call the precheck let through that the admit refuses gets the same
 * answer after scope and validation (a refusal before admission is counted, and the budget's refusal wins). So a
 * stale "open" costs one call's validation, never a wrong answer; a refused admit forgets the entry at once.
 */
const OPEN_TRUST_MS = 250;
const OPEN_MAX_ENTRIES = 10_000;

export const budget = (deps: Pick<GuardDeps, 'policy' | 'now' | 'store' | 'audit' | 'log' | 'metrics'>): Guard => {
  const rulesFor = rulesByTool(deps.policy.budgets);
  // principal, task and user of calls whose precheck found the bounds open, and until when that is trusted.
  const open = new Map<string, number>();
  return (next) =>
    async function budgetGuard(call) {
      const units = call.state.units;
      if (!units) throw new Error('the budget step runs inside the units step');
      const polling = call.tool.polling === true;
      const input = {
        principal: call.principal.name,
        task: call.task,
        user: call.principal.onBehalfOfId,
        rules: rulesFor(call.tool.name),
        // A 2026-07-28 retry that carries a requestState continues the call it answers (MRTR), it does not repeat it:
        // it still counts as a call, and a bad state fails like any refusal.
        sig: polling || call.resume?.state !== undefined ? undefined : callSignature(call),
        polling,
        bounds: taskBounds(deps.policy, call),
        trippedTasksPerHour: deps.policy.loop.trippedTasksPerHour,
        now: deps.now(),
      };
      // Security: the task, user and principal bounds are decided in the store, atomically, as the first operation
      // of the call's admission unit (or of its settlement, when the call is refused before admission); a store
      // error refuses the call (fail closed). The operation records its decision on the call as it runs.
      const openKey = `${input.principal}\0${input.task.source}\0${input.task.id}\0${input.user ?? ''}`;
      const admit: NonNullable<typeof units.admit> = {
        promise: units.admission.add((tx) =>
          andThen(deps.store.budgets.admit(tx, input), (r) => {
            if (!r.ok) open.delete(openKey);
            return (admit.result = r);
          }),
        ),
        unit: units.admission,
        rules: input.rules,
      };
      units.admit = admit;
      // Security: a call its task, user or principal bounds already refuse is refused before scope and validation
      // look at it (no backend is asked about it): a read says so, and the admit — committed now, on its own — is the
      // decision, which also keeps a hammered tripped task open. Should the admit let it through after all (a window
      // just ended), the call goes on and its admission's other operations commit in a second unit.
      const trusted = (open.get(openKey) ?? 0) > input.now;
      if (!trusted && (await deps.store.budgets.wouldRefuse(input))) {
        await deps.audit.commit(units.admission);
        await admitted(deps, call);
        units.admission = new UnitOfWork('admission');
      } else if (!trusted) {
        if (open.size >= OPEN_MAX_ENTRIES) open.clear();
        open.set(openKey, input.now + OPEN_TRUST_MS);
      }
      // A malformed task id counts (in the task the call fell back to) and is refused like invalid arguments.
      if (call.taskInvalid !== undefined)
        throw new GuardError('INVALID_ARGUMENT', `Invalid task id: ${call.taskInvalid}.`, {
          details: { field: call.taskInvalid.split(' must ')[0] },
          next: 'The client or agent controller sets the task id; fix it there. Do not retry this call as it is.',
        });
      return next(call);
    };
};

/** The budget's refusal of this call, once its admit has run and said no (built once per call). */
export function countRefusal(call: Call, deps: Pick<GuardDeps, 'policy'>): GuardError | undefined {
  const admit = call.state.units?.admit;
  const r = admit?.result;
  if (!admit || !r || r.ok) return undefined;
  return (admit.refusal ??= refusal(call, deps, r));
}

/** A refused admit that tripped its task (and maybe the fleet) just now: the alarms, once per call. */
async function alarmFreshTrip(
  deps: Pick<GuardDeps, 'log' | 'audit' | 'metrics'>,
  call: Call,
  admit: NonNullable<NonNullable<Call['state']['units']>['admit']>,
): Promise<void> {
  const r = admit.result;
  if (!r || r.ok || r.kind !== 'tripped' || !r.fresh || admit.alarmed) return;
  admit.alarmed = true;
  await alarmTaskTrip(deps, call, r.trip);
  if (r.fleet) await alarmFleetTrip(deps, call, r.fleet);
}

/**
 * Admission step: the admit ran in the committed admission unit. A refusal raises its alarms (a fresh trip) and
 * refuses the call; an admitted call raises the alarms of budgets it crossed.
 */
export async function admitted(
  deps: Pick<GuardDeps, 'policy' | 'log' | 'audit' | 'metrics'>,
  call: Call,
): Promise<void> {
  const admit = call.state.units?.admit;
  if (!admit) return;
  const r = await admit.promise;
  if (!r.ok) {
    await alarmFreshTrip(deps, call, admit);
    throw countRefusal(call, deps);
  }
  await budgetAlarms(deps, call, r.alarms);
}

/**
 * As the call ends: failures, result bytes and the task's failure streak, as an operation of the settlement, which
 * runs only if the call was admitted (its admit ran earlier in this unit or in the admission). A store error is
 * logged, not raised: the call's own outcome stands. `after()` raises the alarms once the settlement committed.
 */
export function settleBudget(
  deps: Pick<GuardDeps, 'policy' | 'log' | 'now' | 'store' | 'audit' | 'metrics'>,
  call: Call,
  result: CallToolResult | undefined,
  code: ErrorCode | undefined,
): { after: () => Promise<void> } {
  const units = call.state.units;
  const admit = units?.admit;
  if (!units || !admit) return { after: async () => undefined };
  const failed = WAITING.has(code) ? undefined : result ? !!result.isError : true;
  const input = {
    principal: call.principal.name,
    task: call.task,
    user: call.principal.onBehalfOfId,
    rules: admit.rules,
    failed,
    resultBytes: result ? resultBytes(result) : 0,
    now: deps.now(),
  };
  const out: { value?: Settled } = {};
  void units.settlement.add((tx) => {
    if (admit.result?.ok !== true) return;
    try {
      return andThen(deps.store.budgets.settle(tx, input), (v) => void (out.value = v));
    } catch (e) {
      deps.log.error({ err: e, trace_id: call.traceId }, 'could not record a call against the task and budgets');
    }
  });
  return {
    after: async () => {
      if (out.value) await budgetAlarms(deps, call, out.value.alarms);
      // The count ran in the settlement (the call was refused before admission) and found a fresh trip.
      await alarmFreshTrip(deps, call, admit);
    },
  };
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
