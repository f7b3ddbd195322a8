/** The caps, budgets and breaker as the planner (guard_status) and operators (itguard caps / status) see them: used, limit, resets_at. */
import type { Policy } from '../policy/schema.js';
import { TOOL_NAMES } from '../core/policy.js';
import type { BudgetsViews, CapsViews } from '../store/ports/index.js';
import { scopeKeyOf } from './caps.js';
import type { Call } from './types.js';

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
export async function capsView(
  policy: Policy,
  caps: Pick<CapsViews, 'used' | 'usage' | 'resetsAt'>,
  call: Call | undefined,
  now: number,
): Promise<CapView[]> {
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
        resets_at: new Date(await caps.resetsAt(rule, now)).toISOString(),
      };
      if (rule.per === 'global') {
        out.push({ ...base, used: await caps.used(rule, '*', now) });
      } else if (call && (rule.per === 'principal' || rule.per === 'user' || rule.per === 'task')) {
        const key = scopeKeyOf(rule, call, {});
        if (key === undefined) continue;
        out.push({
          ...base,
          used: await caps.used(rule, key, now),
          key: rule.per === 'principal' ? key : `this ${rule.per}`,
        });
      } else {
        const usage = await caps.usage(rule, now);
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

/** The calling task's, user's and principal's windowed budgets: used, limit, resets_at. */
export async function budgetsView(
  policy: Policy,
  budgets: Pick<BudgetsViews, 'usage'>,
  call: Pick<Call, 'principal' | 'task'>,
  now: number,
): Promise<Record<string, unknown>[]> {
  const who = { principal: call.principal.name, task: call.task, user: call.principal.onBehalfOfId };
  return (await budgets.usage(policy.budgets, now, who)).map((u) => ({
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

/** The principal's fleet breaker: ok, or tripped with the rule and when it clears; tasks tripped this hour. */
export async function breakerView(
  policy: Policy,
  budgets: Pick<BudgetsViews, 'breaker'>,
  principal: string,
  now: number,
): Promise<Record<string, unknown>> {
  const b = await budgets.breaker(principal, now);
  return {
    state: b.trip ? 'tripped' : 'ok',
    tripped_tasks_this_hour: b.trippedTasks,
    tripped_tasks_per_hour: policy.loop.trippedTasksPerHour,
    ...(b.trip
      ? {
          rule: b.trip.rule,
          why: b.trip.why,
          tripped_at: new Date(b.trip.trippedAt).toISOString(),
          clears_at: new Date(b.trip.clearsAt ?? 0).toISOString(),
        }
      : {}),
  };
}

/** The calling task as guard_status shows it: how it was identified, what is left of it, its breaker. */
export async function taskView(
  policy: Policy,
  budgets: Pick<BudgetsViews, 'task'>,
  call: Pick<Call, 'principal' | 'task'>,
  now: number,
) {
  const t = policy.task;
  const s = await budgets.task(call.principal.name, call.task, t.idleMinutes * 60_000, now);
  const calls = s?.calls ?? 0;
  const elapsed = s ? now - s.startedAt : 0;
  const bytes = s?.resultBytes ?? 0;
  return {
    id: call.task.id,
    identified_by: call.task.source,
    started_at: s ? new Date(s.startedAt).toISOString() : null,
    calls_used: calls,
    calls_left: Math.max(0, t.maxCalls - calls),
    minutes_left: Math.max(0, Math.floor((t.maxMinutes * 60_000 - elapsed) / 60_000)),
    result_bytes_left: Math.max(0, t.maxResultBytes - bytes),
    failures_in_a_row: s?.streak ?? 0,
    failures_in_a_row_limit: t.maxConsecutiveFailures,
    loop_breaker: s?.trip ? `tripped (${s.trip.rule}): ${s.trip.why}` : 'ok',
    idle_minutes: t.idleMinutes,
  };
}

/** A request's cap preview (the `caps` JSON stored on an approval request) as people read it: console and notices. */
interface CapSpend {
  rule?: unknown;
  measure?: unknown;
  amount?: unknown;
  used?: unknown;
  limit?: unknown;
}

const USD = new Intl.NumberFormat('en-US', { style: 'currency', currency: 'USD' });
const num = (v: unknown): number | undefined => (typeof v === 'number' && Number.isFinite(v) ? v : undefined);
/** Money as money: `$180.00`; anything that is not a number is shown as it is ('?' when absent). */
const usd = (v: unknown): string => {
  const n = num(v);
  return n === undefined ? String(v ?? '?') : USD.format(n);
};

/**
 * "installs-per-day +1 (3/50)"; a cost cap in dollars: "license-spend-per-day +$180.00 ($0.00 of $2,000.00
 * spent)"; another measure is named ("x +2 result_bytes (0/10)").
 */
export function capLines(capsJson: string): string[] {
  let caps: unknown;
  try {
    caps = JSON.parse(capsJson);
  } catch {
    return [];
  }
  if (!Array.isArray(caps)) return [];
  return caps
    .filter((c): c is CapSpend => typeof c === 'object' && c !== null)
    .map((c) => {
      const rule = String(c.rule ?? '?');
      if (c.measure === 'cost_usd') return `${rule} +${usd(c.amount)} (${usd(c.used)} of ${usd(c.limit)} spent)`;
      const measure = c.measure === undefined || c.measure === 'calls' ? '' : ` ${String(c.measure)}`;
      return `${rule} +${String(c.amount ?? '?')}${measure} (${String(c.used ?? '?')}/${String(c.limit ?? '?')})`;
    });
}
