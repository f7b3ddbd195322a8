/**
 * Aggregate caps: every rule of the tool is reserved in one transaction, or the call is refused with
 * CAP_EXCEEDED naming the rule, the call's amount, used/limit, what is left and resets_at. Crossing alarm_at raises one alarm per rule per
 * window. The reservation is released if the call is declined or fails before its side effect.
 *
 * A write's reservation belongs to its request (the idempotency step's request id): it is recorded on the
 * request's idempotency records, so a retry that adopted the records of an attempt killed before its effect
 * replaces that attempt's reservation instead of adding a second one (CapsStore.reserve).
 */
import type { CallToolResult } from '@modelcontextprotocol/server';
import type { CapRule } from '../core/policy.js';
import type { CapDemand, CapHold } from '../store/ports/index.js';
import { raiseAlarm } from './alarm.js';
import { afterCall, write } from './units.js';
import type { GuardDeps } from './deps.js';
import { GuardError } from '../core/errors.js';
import { taskKey } from './task.js';
import type { Call, Guard } from './types.js';
import type { CapKeys } from '../core/tool.js';

/** Where a cap rule counts this call; undefined: the rule does not apply (a `per: user` rule and no OAuth user). */
export function scopeKeyOf(rule: CapRule, call: Pick<Call, 'principal' | 'task'>, keys: CapKeys): string | undefined {
  switch (rule.per) {
    case 'global':
      return '*';
    case 'principal':
      return call.principal.name;
    case 'user':
      return call.principal.onBehalfOfId === undefined ? undefined : `user\u0000${call.principal.onBehalfOfId}`;
    case 'task':
      return `task\u0000${taskKey(call.principal.name, call.task)}`;
    case 'target':
      return keys.target ?? '(none)';
    case 'requester':
      return keys.requester ?? '(none)';
  }
}

export const unitOf = (rule: CapRule): string => (rule.measure === 'cost_usd' ? 'USD' : 'calls');
const fmtAmount = (rule: CapRule, n: number): string => (rule.measure === 'cost_usd' ? n.toFixed(2) : String(n));

/** What the call's cap rules ask of it: one demand per rule that applies (a `per: user` rule needs a user). */
export function capDemands(call: Call): CapDemand[] {
  const keys = call.state.resolved;
  const demands: CapDemand[] = [];
  for (const rule of call.toolPolicy.caps) {
    const scopeKey = scopeKeyOf(rule, call, keys);
    // A `per: user` cap does not apply to a call no human stands behind; the tool's other caps still do.
    if (scopeKey === undefined) continue;
    demands.push({ rule, scopeKey, amount: rule.measure === 'cost_usd' ? (keys.costUsd ?? 0) : 1 });
  }
  return demands;
}

/** The request a write's reservation is recorded on. */
export const capHold = (call: Call, requestId: string): CapHold => ({
  principal: call.principal.name,
  requestId,
  traceId: call.traceId,
});

export const caps =
  (deps: Pick<GuardDeps, 'store' | 'now' | 'log' | 'audit' | 'metrics'>): Guard =>
  (next) =>
    async function capsGuard(call) {
      const demands = capDemands(call);
      if (!demands.length) return next(call);
      const hold = call.state.requestId === undefined ? undefined : capHold(call, call.state.requestId);
      // Reserved in the call's admission unit (the admission step), or here when no admission planned it (a
      // request adopted after a crash).
      const r =
        (await call.state.units?.planned?.reserve) ??
        (await write(deps, (tx) => deps.store.caps.reserve(tx, demands, deps.now(), hold)));
      if (!r.ok && r.reason === 'not_held') {
        // Another call took the request over after this one began or adopted it: it runs the request, not this one.
        throw new GuardError('IN_PROGRESS', 'The same request is being processed by another call.');
      }
      if (!r.ok) {
        const per = r.rule.per === 'global' ? '' : ` for this ${r.rule.per}`;
        throw capExceeded(r, per);
      }
      const preview = await Promise.all(
        demands.map(async (d) => ({
          rule: d.rule.name,
          measure: d.rule.measure,
          amount: d.amount,
          used: await deps.store.caps.used(d.rule, d.scopeKey, deps.now()),
          limit: d.rule.limit,
        })),
      );
      const held = { items: r.items, preview, holder: 'call' as 'call' | 'approval' | 'none', hold };
      call.state.caps = held;
      for (const a of r.alarms) {
        await raiseAlarm(deps, call, {
          kind: 'CAP_ALARM',
          rule: a.rule.name,
          message: `cap ${a.rule.name} crossed its alarm level: ${fmtAmount(a.rule, a.used)}/${fmtAmount(a.rule, a.rule.limit)} ${unitOf(a.rule)} (alarm_at ${a.rule.alarmAt})`,
          detail: { used: a.used, limit: a.rule.limit, alarm_at: a.rule.alarmAt, per: a.rule.per },
        });
      }
      // While the call holds its reservation (holder 'call') it gives it back if nothing executed, or in shadow
      // mode; an approval request that took it over (holder 'approval') or a step that returned it ('none') owns it.
      const giveBack = (failed: boolean) =>
        held.holder === 'call' &&
        (call.toolPolicy.mode === 'shadow' || (failed && call.state.executedAt === undefined));
      let result: CallToolResult;
      // Given back with the call's settlement.
      const release = () => void afterCall(deps, call, (tx) => deps.store.caps.release(tx, r.items, hold));
      try {
        result = await next(call);
      } catch (e) {
        if (giveBack(true)) release();
        throw e;
      }
      if (giveBack(!!result.isError)) release();
      return result;
    };

/**
 * CAP_EXCEEDED saying what the call asked for and what is left (DESIGN §3 step 6): when room remains but not enough
 * for this call, the agent is told a smaller action may still fit; when nothing is left, to wait for resets_at.
 */
function capExceeded(r: { rule: CapRule; used: number; amount: number; resetsAt: number }, per: string): GuardError {
  const { rule, used, amount } = r;
  const resets = new Date(r.resetsAt).toISOString();
  const remaining = Math.max(0, rule.limit - used);
  const unit = unitOf(rule);
  const f = (v: number) => fmtAmount(rule, v);
  const someLeft = remaining > 1e-9 && !(rule.measure === 'calls' && remaining < 1);
  const message = someLeft
    ? `Cap "${rule.name}"${per} has ${f(remaining)} ${unit} left this ${rule.window} (${f(used)}/${f(rule.limit)} used); this call needs ${f(amount)} ${unit}, which does not fit. It resets at ${resets}.`
    : `Cap "${rule.name}" reached${per}: ${f(used)}/${f(rule.limit)} ${unit} used this ${rule.window}, nothing is left (this call needs ${f(amount)} ${unit}); it resets at ${resets}.`;
  const next = someLeft
    ? `A smaller action (at most ${f(remaining)} ${unit}) would still fit; otherwise tell the user, and do not retry this one before resets_at.`
    : 'Tell the user the limit is reached; do not retry before resets_at.';
  return new GuardError('CAP_EXCEEDED', message, {
    next,
    details: {
      rule: rule.name,
      amount,
      used,
      limit: rule.limit,
      remaining,
      measure: rule.measure,
      window: rule.window,
      per: rule.per,
      resets_at: resets,
    },
  });
}
