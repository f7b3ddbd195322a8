/**
 * Aggregate cap usage, per (tool, rule, scope key, calendar window). A call's matching rules are reserved in
 * one BEGIN IMMEDIATE transaction — all of them or none — so concurrent calls from several processes admit
 * exactly `limit`. Released when the call is declined or fails before its side effect.
 */
import type { CapRule } from '../policy/schema.js';
import { windowEnd, windowStart } from '../windows.js';
import { immediate, relaxed, type Db } from './db.js';

export interface CapItem {
  tool: string;
  rule: string;
  scopeKey: string;
  windowStart: number;
  amount: number;
}

export interface CapDemand {
  rule: CapRule;
  scopeKey: string;
  amount: number;
}

export type ReserveResult =
  | { ok: true; items: CapItem[]; alarms: { rule: CapRule; used: number; scopeKey: string }[] }
  | { ok: false; rule: CapRule; used: number; resetsAt: number; scopeKey: string; amount: number };

export interface CapUsageRow {
  tool: string;
  rule: string;
  scope_key: string;
  window_start: number;
  used: number;
}

export class CapsStore {
  private readonly get;
  private readonly upsert;
  private readonly release_;
  constructor(
    private readonly db: Db,
    private readonly tz: string,
  ) {
    this.get = db.prepare<[string, string, string, number], { used: number; alarmed: number }>(
      'SELECT used, alarmed FROM cap_usage WHERE tool = ? AND rule = ? AND scope_key = ? AND window_start = ?',
    );
    this.upsert = db.prepare(
      `INSERT INTO cap_usage (tool, rule, scope_key, window_start, used, alarmed) VALUES (@tool, @rule, @scopeKey, @windowStart, @amount, @alarmed)
       ON CONFLICT(tool, rule, scope_key, window_start) DO UPDATE SET used = used + @amount, alarmed = max(alarmed, @alarmed)`,
    );
    this.release_ = db.prepare(
      'UPDATE cap_usage SET used = max(0, used - ?) WHERE tool = ? AND rule = ? AND scope_key = ? AND window_start = ?',
    );
  }

  /** Reserves every demand or none. */
  reserve(demands: CapDemand[], now: number): ReserveResult {
    // Durable before the side effect through the audit intent's strict commit that follows (see relaxed()).
    return relaxed(this.db, () => this.reserveTx(demands, now));
  }

  private reserveTx(demands: CapDemand[], now: number): ReserveResult {
    return immediate(this.db, (): ReserveResult => {
      const planned: { d: CapDemand; start: number; used: number; alarmed: number }[] = [];
      for (const d of demands) {
        const start = windowStart(d.rule.window, now, this.tz);
        const row = this.get.get(d.rule.tool, d.rule.name, d.scopeKey, start);
        const used = row?.used ?? 0;
        // Security: the check and the increment are in one IMMEDIATE transaction: no other writer interleaves.
        if (used + d.amount > d.rule.limit + 1e-9) {
          return {
            ok: false,
            rule: d.rule,
            used,
            resetsAt: windowEnd(d.rule.window, now, this.tz),
            scopeKey: d.scopeKey,
            amount: d.amount,
          };
        }
        planned.push({ d, start, used, alarmed: row?.alarmed ?? 0 });
      }
      const alarms: { rule: CapRule; used: number; scopeKey: string }[] = [];
      const items: CapItem[] = [];
      for (const { d, start, used, alarmed } of planned) {
        const after = used + d.amount;
        const crosses = d.rule.alarmAt !== undefined && !alarmed && after >= d.rule.alarmAt;
        if (crosses) alarms.push({ rule: d.rule, used: after, scopeKey: d.scopeKey });
        this.upsert.run({
          tool: d.rule.tool,
          rule: d.rule.name,
          scopeKey: d.scopeKey,
          windowStart: start,
          amount: d.amount,
          alarmed: crosses ? 1 : 0,
        });
        items.push({
          tool: d.rule.tool,
          rule: d.rule.name,
          scopeKey: d.scopeKey,
          windowStart: start,
          amount: d.amount,
        });
      }
      return { ok: true, items, alarms };
    });
  }

  release(items: CapItem[]): void {
    if (!items.length) return;
    relaxed(this.db, () =>
      immediate(this.db, () => {
        for (const i of items) this.release_.run(i.amount, i.tool, i.rule, i.scopeKey, i.windowStart);
      }),
    );
  }

  /** Usage of one rule in the window containing `now`, for one scope key. */
  used(rule: CapRule, scopeKey: string, now: number): number {
    return this.get.get(rule.tool, rule.name, scopeKey, windowStart(rule.window, now, this.tz))?.used ?? 0;
  }

  /** Every scope key's usage of a rule in the current window, highest first. */
  usage(rule: CapRule, now: number): { scopeKey: string; used: number }[] {
    return this.db
      .prepare<[string, string, number], { scope_key: string; used: number }>(
        'SELECT scope_key, used FROM cap_usage WHERE tool = ? AND rule = ? AND window_start = ? AND used > 0 ORDER BY used DESC',
      )
      .all(rule.tool, rule.name, windowStart(rule.window, now, this.tz))
      .map((r) => ({ scopeKey: r.scope_key, used: r.used }));
  }

  resetsAt(rule: CapRule, now: number): number {
    return windowEnd(rule.window, now, this.tz);
  }
}
