/**
 * Budgets and the loop breaker (DESIGN §3). Every call counts, whatever its outcome: this step sits before scope
 * and validation, so an unknown tool, a scope refusal, invalid or denied arguments spend budget and extend the
 * failure streak exactly like a call that ran, and a tripped breaker or a spent budget refuses before anything
 * else is looked at. Two levels:
 *  - the transport session (`session.*`, in memory): calls, minutes, result bytes, identical calls, failures in
 *    a row. Reconnecting starts a new session, which is why these are not the authoritative bound;
 *  - the principal (`budgets:` and `loop:`, in the database): across sessions, processes and replicas, in
 *    calendar windows. The 2026-07-28 protocol has no sessions: its calls carry none, the session level is skipped,
 *    and this level alone bounds them (a `per: session` budget rule counts per principal there).
 *    docs/architecture.md, "Bounds per protocol era", has the table.
 * What does not count: refusals by this step itself and by the kill switch (nothing was evaluated; counting them
 * could never admit more), and waiting (APPROVAL_PENDING, IN_PROGRESS) neither fails nor ends a failure streak.
 * Polling tools (request_status, guard_status, which refusals tell the agent to call) are exempt from identical-
 * call counting and from the session's call count; they stay under every principal budget.
 */
import type { CallToolResult } from '@modelcontextprotocol/server';
import { actionArgs, canonicalJson, sha256 } from '../canonical.js';
import type { BudgetRule } from '../policy/schema.js';
import type { BudgetAlarm, Trip } from '../store/budget-store.js';
import type { CallTail } from './audit-writer.js';
import { raiseAlarm } from './alarm.js';
import type { GuardDeps } from './deps.js';
import { GuardError, errorCodeOf, type ErrorCode } from './errors.js';
import type { Call, Guard, SessionState } from './types.js';

type Settled = { alarms: BudgetAlarm[]; trip: Trip | undefined };

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

const loopDetected = (message: string, details: Record<string, unknown>) =>
  new GuardError('LOOP_DETECTED', message, { details });

function principalTripError(trip: Trip): GuardError {
  const clears = new Date(trip.clearsAt).toISOString();
  return loopDetected(
    `The loop breaker stopped principal-wide calls: ${trip.why}. It clears at ${clears}, or when IT resets it.`,
    {
      rule: trip.rule,
      level: 'principal',
      tripped_at: new Date(trip.trippedAt).toISOString(),
      clears_at: clears,
    },
  );
}

export const budget = (deps: Pick<GuardDeps, 'policy' | 'log' | 'audit' | 'metrics' | 'now' | 'budgets'>): Guard => {
  const rulesFor = rulesByTool(deps.policy.budgets);
  return (next) =>
    async function budgetGuard(call) {
      const s = call.session;
      const polling = call.tool.polling === true;
      const sig = polling ? undefined : callSignature(call);
      // No session (2026-07-28): the session rules have nothing to count in, and the principal's alone apply.
      if (s) await sessionBounds(deps, call, s, sig);

      const rules = rulesFor(call.tool.name);
      const now = deps.now();
      // Security: the principal's budgets and breaker are decided in the database, atomically; an error here
      // (database busy, unreadable) propagates and the call is refused (fail closed).
      const admitted = deps.budgets.admit({
        principal: call.principal.name,
        sessionId: s?.id,
        rules,
        sig,
        identicalPerHour: deps.policy.loop.identicalPerHour,
        now,
      });
      if (!admitted.ok) {
        if (admitted.kind === 'tripped') {
          if (admitted.fresh) await alarmTrip(deps, call, admitted.trip);
          throw principalTripError(admitted.trip);
        }
        const r = admitted.rule;
        const resets = new Date(admitted.resetsAt).toISOString();
        // Without a session (2026-07-28) a per-session rule was counted per principal: say so, and report that level.
        const level = r.per === 'session' && !s ? 'principal' : r.per;
        const per =
          r.per === 'principal'
            ? `principal ${call.principal.name}`
            : s
              ? 'this session'
              : `principal ${call.principal.name} (2026-07-28 has no sessions: per-session rules count per principal)`;
        throw new GuardError(
          'BUDGET_EXHAUSTED',
          `Budget "${r.name}" is used up for ${per}: ${admitted.used}/${r.limit} ${r.measure.replace('_', ' ')} this ${r.window}; it resets at ${resets}.`,
          {
            details: {
              budget: r.name,
              level,
              measure: r.measure,
              used: admitted.used,
              limit: r.limit,
              window: r.window,
              resets_at: resets,
            },
            next: `Summarise progress for the user and stop; do not call again before ${resets}.`,
          },
        );
      }
      await budgetAlarms(deps, call, admitted.alarms);

      if (s && !polling) s.calls += 1;
      // The call's tail: the steps inside queue what they write after the call (its outcome record, the idempotency
      // result); the settle joins them, and all of it commits as one unit of the audit writer's batch.
      const tail: CallTail = { events: [], writes: [] };
      call.state.tail = tail;
      let result: CallToolResult | undefined;
      let code: ErrorCode | undefined;
      let thrown: { e: unknown } | undefined;
      try {
        result = await next(call);
        code = errorCodeOf(result);
      } catch (e) {
        code = e instanceof GuardError ? e.code : 'INTERNAL';
        thrown = { e };
      }
      call.state.tail = undefined; // what is written from here on (alarms, the denial audit) is written on its own
      const failed = WAITING.has(code) ? undefined : result ? !!result.isError : true;
      const bytes = result ? resultBytes(result) : 0;
      if (s) {
        s.resultBytes += bytes;
        if (failed === true) s.consecutiveFailures += 1;
        else if (failed === false) s.consecutiveFailures = 0;
      }
      const settled = settleIn(tail, deps, call, rules, failed, bytes);
      try {
        await deps.audit.commit(tail);
      } catch (e) {
        // The call's outcome record could not be written: a refusal still refuses; a result is not returned
        // without its record (INTERNAL; the idempotency record stays in flight, and a retry asks the backend).
        deps.log.error({ err: e, trace_id: call.traceId }, 'could not write the records of a call after it ran');
        if (!thrown) throw e;
      }
      if (settled.value) {
        await budgetAlarms(deps, call, settled.value.alarms);
        if (settled.value.trip) await alarmTrip(deps, call, settled.value.trip);
      }
      if (thrown) throw thrown.e;
      return result!;
    };
};

/**
 * After the call: failures, result bytes and the principal's failure streak, queued in the call's tail. A store
 * error is logged, not raised (the settle runs in its own savepoint): the call's own outcome stands.
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
    sessionId: call.session?.id,
    rules,
    failed,
    resultBytes: bytes,
    failuresInARow: deps.policy.loop.failuresInARow,
    now: deps.now(),
  };
  tail.writes.push(() => {
    try {
      out.value = deps.budgets.settle(input);
    } catch (e) {
      deps.log.error({ err: e, trace_id: call.traceId }, 'could not record a call against the principal budgets');
    }
  });
  return out;
}

/** The session level (2025-11-25 only): its breaker, max_calls, max_minutes, max_result_bytes, then the loop rules. */
async function sessionBounds(
  deps: Pick<GuardDeps, 'policy' | 'log' | 'audit' | 'metrics' | 'now'>,
  call: Call,
  s: SessionState,
  sig: string | undefined,
): Promise<void> {
  const b = deps.policy.session;
  // Security: a tripped session breaker is final for the session.
  if (s.tripped) {
    throw loopDetected(
      `This session was stopped by the loop breaker: ${s.tripped.why}. It does not clear in this session.`,
      {
        rule: s.tripped.rule,
        level: 'session',
        clears_at: null,
      },
    );
  }
  const exhausted = (what: string, limit: string) =>
    new GuardError('BUDGET_EXHAUSTED', `This session has used its ${what} (${limit}).`, {
      details: { budget: what, level: 'session', limit },
    });
  if (call.tool.polling !== true && s.calls >= b.maxCalls) throw exhausted('calls', `max_calls ${b.maxCalls}`);
  if (deps.now() - s.startedAt >= b.maxMinutes * 60_000) throw exhausted('time', `max_minutes ${b.maxMinutes}`);
  if (s.resultBytes >= b.maxResultBytes) throw exhausted('result bytes', `max_result_bytes ${b.maxResultBytes}`);
  // "More than max_consecutive_failures in a row" (DESIGN §3): the call after the (N+1)th failure is refused.
  if (s.consecutiveFailures > call.toolPolicy.maxConsecutiveFailures) {
    await tripSession(
      deps,
      call,
      s,
      'max_consecutive_failures',
      `${s.consecutiveFailures} failed calls in a row (max_consecutive_failures ${call.toolPolicy.maxConsecutiveFailures})`,
    );
  }
  if (sig !== undefined) {
    const seen = (s.identical.get(sig) ?? 0) + 1;
    s.identical.set(sig, seen);
    if (seen > call.toolPolicy.maxIdenticalCalls) {
      await tripSession(
        deps,
        call,
        s,
        'max_identical_calls',
        `${call.tool.name} called ${seen} times with the same arguments (max_identical_calls ${call.toolPolicy.maxIdenticalCalls})`,
      );
    }
  }
}

async function tripSession(
  deps: Pick<GuardDeps, 'log' | 'audit' | 'metrics'>,
  call: Call,
  s: SessionState,
  rule: string,
  why: string,
): Promise<never> {
  s.tripped = { rule, why };
  await raiseAlarm(deps, call, {
    kind: 'LOOP_DETECTED',
    rule,
    message: `loop breaker tripped for session ${s.id}: ${why}`,
  });
  throw loopDetected(`The loop breaker stopped this session: ${why}. It does not clear in this session.`, {
    rule,
    level: 'session',
    clears_at: null,
  });
}

const alarmTrip = (deps: Pick<GuardDeps, 'log' | 'audit' | 'metrics'>, call: Call, trip: Trip) =>
  raiseAlarm(deps, call, {
    kind: 'LOOP_DETECTED',
    rule: trip.rule,
    message: `loop breaker tripped for principal ${call.principal.name}: ${trip.why}; clears at ${new Date(trip.clearsAt).toISOString()}`,
    detail: { level: 'principal', clears_at: new Date(trip.clearsAt).toISOString() },
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
      message: `budget ${a.rule.name} crossed its alarm level for ${a.rule.per} ${call.principal.name}: ${a.used}/${a.rule.limit} ${a.rule.measure} (alarm_at ${a.rule.alarmAt})`,
      detail: { used: a.used, limit: a.rule.limit, alarm_at: a.rule.alarmAt, per: a.rule.per, measure: a.rule.measure },
    });
  }
}
