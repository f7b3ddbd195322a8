/** The caps, budgets and breaker as the planner (guard_status) and operators (itguard caps / status) see them: used, limit, resets_at. */
import type { Policy } from '../policy/schema.js';
import { TOOL_NAMES } from '../policy/schema.js';
import type { CapsStore } from '../store/caps-store.js';
import type { BudgetStore } from '../store/budget-store.js';
import { sessionScopeKey, type Call } from './types.js';

export interface CapView extends Record<string, unknown> {
  tool: string;
  rule: string;
  per: string;
  measure: string;
  window: string;
  used: number;
  limit: number;
  alarm_at: number | null;
  resets_at: string;
  /** For per-key rules: which key `used` is for (the caller's own, or the busiest when no caller). */
  key?: string;
  keys?: number;
}

/** With a call: each rule's usage for the caller's own key where the rule is per principal/session. */
export function capsView(policy: Policy, caps: CapsStore, call: Call | undefined, now: number): CapView[] {
  const out: CapView[] = [];
  for (const tool of TOOL_NAMES) {
    for (const rule of policy.tools[tool].caps) {
      const base = {
        tool,
        rule: rule.name,
        per: rule.per,
        measure: rule.measure,
        window: rule.window,
        limit: rule.limit,
        alarm_at: rule.alarmAt ?? null,
        resets_at: new Date(caps.resetsAt(rule, now)).toISOString(),
      };
      if (rule.per === 'global') {
        out.push({ ...base, used: caps.used(rule, '*', now) });
      } else if (call && (rule.per === 'principal' || rule.per === 'session')) {
        const key = rule.per === 'principal' ? call.principal.name : sessionScopeKey(call);
        out.push({ ...base, used: caps.used(rule, key, now), key });
      } else {
        const usage = caps.usage(rule, now);
        // The planner sees the busiest key's usage but not whose it is.
        out.push({
          ...base,
          used: usage[0]?.used ?? 0,
          key: call ? '(busiest)' : (usage[0]?.scopeKey ?? '-'),
          keys: usage.length,
        });
      }
    }
  }
  return out;
}

/** The principal's budgets (and this session's, for per-session rules): used, limit, resets_at. */
export function budgetsView(
  policy: Policy,
  budgets: BudgetStore,
  principal: string,
  sessionId: string | undefined,
  now: number,
): Record<string, unknown>[] {
  return budgets.usage(policy.budgets, now, { principal, sessionId }).map((u) => ({
    budget: u.rule,
    per: u.per,
    measure: u.measure,
    window: u.window,
    used: u.used,
    limit: u.limit,
    left: Math.max(0, u.limit - u.used),
    alarm_at: u.alarmAt,
    resets_at: new Date(u.resetsAt).toISOString(),
  }));
}

/** The principal's loop breaker: ok, or tripped with the rule and when it clears. */
export function breakerView(
  policy: Policy,
  budgets: BudgetStore,
  principal: string,
  now: number,
): Record<string, unknown> {
  const b = budgets.breaker(principal, now);
  return {
    state: b.trip ? 'tripped' : 'ok',
    failures_in_a_row: b.streak,
    failures_in_a_row_limit: policy.loop.failuresInARow,
    identical_per_hour: policy.loop.identicalPerHour,
    ...(b.trip
      ? {
          rule: b.trip.rule,
          why: b.trip.why,
          tripped_at: new Date(b.trip.trippedAt).toISOString(),
          clears_at: new Date(b.trip.clearsAt).toISOString(),
        }
      : {}),
  };
}
