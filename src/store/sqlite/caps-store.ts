/**
 * Aggregate cap usage, per (tool, rule, scope key, calendar window). A call's matching rules are reserved in
 * one BEGIN IMMEDIATE transaction — all of them or none — so concurrent calls from several processes admit
 * exactly `limit`. Released when the call is declined or fails before its side effect.
 *
 * A write's reservation belongs to its request: the items are written on the request's idempotency records
 * (`cap_items`, migration 9) in the reservation's transaction, and cleared in the release's. A retry that adopts
 * the records of an attempt that died before its effect (recovery proved it never ran) gives that attempt's
 * reservation back in the same transaction as it reserves again, so the request is charged once.
 */
import type { CapRule } from '../../core/policy.js';
import { windowEnd, windowStart } from '../../windows.js';
import { immediate, relaxed, type Db } from './db.js';
import { OWNER } from '../owner.js';
import type { CapItem, CapDemand, CapHold, ReserveResult } from '../ports/types.js';
export type { CapItem, CapDemand, CapHold, ReserveResult };

interface HoldRow {
  owner: string;
  trace_id: string;
  state: string;
  cap_items: string | null;
}

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
  private readonly holdGet;
  private readonly holdSet;
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
    // The records of one action share the request id (idempotency_request index): one row read, all rows written.
    this.holdGet = db.prepare<[string, string], HoldRow>(
      'SELECT owner, trace_id, state, cap_items FROM idempotency WHERE principal = ? AND request_id = ? LIMIT 1',
    );
    this.holdSet = db.prepare('UPDATE idempotency SET cap_items = ? WHERE principal = ? AND request_id = ?');
  }

  /** The request's records, if `hold`'s call owns them in flight. */
  private held(hold: CapHold): HoldRow | undefined {
    const row = this.holdGet.get(hold.principal, hold.requestId);
    return row && row.state === 'in_flight' && row.owner === OWNER && row.trace_id === hold.traceId ? row : undefined;
  }

  /**
   * Reserves every demand or none. With `hold`, the reservation belongs to that request: whatever its records
   * still hold from an earlier attempt (which died before its effect; the caller adopted the records after the
   * backend said the request never happened) is given back first, in the same transaction, and the new items are
   * written on the records. A refusal still gives the earlier attempt's items back: the request did nothing.
   */
  reserve(demands: CapDemand[], now: number, hold?: CapHold): ReserveResult {
    // Durable before the side effect through the audit intent's strict commit that follows (see relaxed()).
    return relaxed(this.db, () => this.reserveTx(demands, now, hold));
  }

  private reserveTx(demands: CapDemand[], now: number, hold: CapHold | undefined): ReserveResult {
    return immediate(this.db, (): ReserveResult => {
      let replaced: CapItem[] = [];
      if (hold) {
        const row = this.held(hold);
        // Security: only the call that owns the request reserves for it; fail closed, nothing reserved.
        if (!row) return { ok: false, reason: 'not_held' };
        if (row.cap_items !== null) {
          replaced = JSON.parse(row.cap_items) as CapItem[];
          this.releaseItems(replaced);
          this.holdSet.run(null, hold.principal, hold.requestId);
        }
      }
      const planned: { d: CapDemand; start: number; used: number; alarmed: number }[] = [];
      for (const d of demands) {
        const start = windowStart(d.rule.window, now, this.tz);
        const row = this.get.get(d.rule.tool, d.rule.name, d.scopeKey, start);
        const used = row?.used ?? 0;
        // Security: the check and the increment are in one IMMEDIATE transaction: no other writer interleaves.
        if (used + d.amount > d.rule.limit + 1e-9) {
          return {
            ok: false,
            reason: 'cap',
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
      if (hold) this.holdSet.run(JSON.stringify(items), hold.principal, hold.requestId);
      return { ok: true, items, alarms, replaced };
    });
  }

  /**
   * Gives a reservation back. With `hold`, only while the request's records still hold it for that call (and they
   * stop holding it in the same transaction): a call that took the request over has given it back already.
   */
  release(items: CapItem[], hold?: CapHold): void {
    if (!items.length) return;
    relaxed(this.db, () =>
      immediate(this.db, () => {
        if (hold) {
          // Security: never give back twice; skipping counts too much (fail closed), never too little.
          if (this.held(hold)?.cap_items == null) return;
          this.holdSet.run(null, hold.principal, hold.requestId);
        }
        this.releaseItems(items);
      }),
    );
  }

  /** What the request's records hold now (undefined: none, or no such request). */
  holding(principal: string, requestId: string): CapItem[] | undefined {
    const row = this.holdGet.get(principal, requestId);
    return row?.cap_items ? (JSON.parse(row.cap_items) as CapItem[]) : undefined;
  }

  private releaseItems(items: CapItem[]): void {
    for (const i of items) this.release_.run(i.amount, i.tool, i.rule, i.scopeKey, i.windowStart);
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
