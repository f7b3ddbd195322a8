/**
 * Aggregate caps on PostgreSQL (CapsPort), with sqlite/caps-store.ts's decisions. Each demand is reserved by one
 * conditional upsert, `INSERT … ON CONFLICT DO UPDATE SET used = used + n WHERE used + n <= limit RETURNING`, in the
 * unit's transaction: the check and the increment are one statement under the row's lock, so concurrent calls on
 * any number of replicas admit exactly `limit`. All or none: when a later demand is refused, the ones this call
 * already reserved are given back in the same transaction (still locked by it: no one saw them). A reservation held
 * by a request is written on its idempotency records (`cap_items`), locked for the check of who holds it.
 * Windows are computed in JS from the call's `now` in the policy time zone, as on SQLite; a serving process on
 * PostgreSQL times its calls by the database's clock (clock.ts), so every replica's windows agree.
 */
import type { CapRule } from '../../core/policy.js';
import { windowEnd, windowStart } from '../../windows.js';
import type { CapsViews } from '../ports/index.js';
import type { CapDemand, CapHold, CapItem, ReserveResult } from '../ports/types.js';
import type { Tx } from '../unit.js';
import type { PgStore } from './connect.js';
import { pgKey, txOf, unPgKey, type Q } from './runner.js';

interface HoldRow {
  owner: string;
  trace_id: string;
  state: string;
  cap_items: string | null;
}

/** Gives cap room back (never below zero), one statement per item. */
export async function releaseCapItems(q: Q, items: readonly CapItem[]): Promise<void> {
  for (const i of items)
    await q`UPDATE cap_usage SET used = greatest(0, used - ${i.amount})
            WHERE tool = ${i.tool} AND rule = ${i.rule} AND scope_key = ${pgKey(i.scopeKey)} AND window_start = ${i.windowStart}`;
}

export class PgCaps implements CapsViews {
  constructor(
    private readonly pg: PgStore,
    private readonly tz: string,
    private readonly owner: string,
  ) {}

  /** The request's records, locked, if `hold`'s call owns them in flight. */
  private async held(q: Q, hold: CapHold): Promise<HoldRow | undefined> {
    const rows = await q<HoldRow[]>`SELECT owner, trace_id, state, cap_items FROM idempotency
      WHERE principal = ${hold.principal} AND request_id = ${hold.requestId} FOR UPDATE`;
    const row = rows[0];
    return row && row.state === 'in_flight' && row.owner === this.owner && row.trace_id === hold.traceId
      ? row
      : undefined;
  }

  private async setHold(q: Q, hold: CapHold, items: CapItem[] | null): Promise<void> {
    await q`UPDATE idempotency SET cap_items = ${items === null ? null : JSON.stringify(items)}
            WHERE principal = ${hold.principal} AND request_id = ${hold.requestId}`;
  }

  async reserve(t: Tx, demands: CapDemand[], now: number, hold?: CapHold): Promise<ReserveResult> {
    const tx = txOf(t);
    let replaced: CapItem[] = [];
    if (hold) {
      const row = await this.held(tx, hold);
      // Security: only the call that owns the request reserves for it; fail closed, nothing reserved.
      if (!row) return { ok: false, reason: 'not_held' };
      if (row.cap_items !== null) {
        replaced = JSON.parse(row.cap_items) as CapItem[];
        await releaseCapItems(tx, replaced);
        await this.setHold(tx, hold, null);
      }
    }
    const items: CapItem[] = [];
    const alarms: { rule: CapRule; used: number; scopeKey: string }[] = [];
    const crossed: CapItem[] = [];
    for (const d of demands) {
      const start = windowStart(d.rule.window, now, this.tz);
      const item = { tool: d.rule.tool, rule: d.rule.name, scopeKey: d.scopeKey, windowStart: start, amount: d.amount };
      // Security: check and increment in one statement under the row's lock (a fresh row: its first use, checked here).
      const fits = d.amount <= d.rule.limit + 1e-9;
      const [u] = fits
        ? await tx<{ used: number; alarmed: number }[]>`
            INSERT INTO cap_usage (tool, rule, scope_key, window_start, used, alarmed)
            VALUES (${item.tool}, ${item.rule}, ${pgKey(item.scopeKey)}, ${start}, ${d.amount}, 0)
            ON CONFLICT (tool, rule, scope_key, window_start) DO UPDATE SET used = cap_usage.used + EXCLUDED.used
            WHERE cap_usage.used + EXCLUDED.used <= ${d.rule.limit + 1e-9}
            RETURNING used, alarmed`
        : [];
      if (!u) {
        // All or none: what this call reserved so far goes back before anyone saw it.
        await releaseCapItems(tx, items);
        const [cur] = await tx<{ used: number }[]>`SELECT used FROM cap_usage WHERE tool = ${item.tool}
          AND rule = ${item.rule} AND scope_key = ${pgKey(item.scopeKey)} AND window_start = ${start}`;
        return {
          ok: false,
          reason: 'cap',
          rule: d.rule,
          used: cur?.used ?? 0,
          resetsAt: windowEnd(d.rule.window, now, this.tz),
          scopeKey: d.scopeKey,
          amount: d.amount,
        };
      }
      items.push(item);
      if (d.rule.alarmAt !== undefined && !u.alarmed && u.used >= d.rule.alarmAt) {
        alarms.push({ rule: d.rule, used: u.used, scopeKey: d.scopeKey });
        crossed.push(item);
      }
    }
    for (const c of crossed)
      await tx`UPDATE cap_usage SET alarmed = 1 WHERE tool = ${c.tool} AND rule = ${c.rule}
               AND scope_key = ${pgKey(c.scopeKey)} AND window_start = ${c.windowStart}`;
    if (hold) await this.setHold(tx, hold, items);
    return { ok: true, items, alarms, replaced };
  }

  async release(t: Tx, items: CapItem[], hold?: CapHold): Promise<void> {
    if (!items.length) return;
    const tx = txOf(t);
    if (hold) {
      // Security: never give back twice; skipping counts too much (fail closed), never too little.
      if ((await this.held(tx, hold))?.cap_items == null) return;
      await this.setHold(tx, hold, null);
    }
    await releaseCapItems(tx, items);
  }

  async used(rule: CapRule, scopeKey: string, now: number): Promise<number> {
    const [u] = await this.pg.sql<{ used: number }[]>`SELECT used FROM cap_usage WHERE tool = ${rule.tool}
      AND rule = ${rule.name} AND scope_key = ${pgKey(scopeKey)} AND window_start = ${windowStart(rule.window, now, this.tz)}`;
    return u?.used ?? 0;
  }

  /** Every scope key's usage of a rule in the current window, highest first (keys as callers know them). */
  async usage(rule: CapRule, now: number): Promise<{ scopeKey: string; used: number }[]> {
    const rows = await this.pg.sql<{ scope_key: string; used: number }[]>`SELECT scope_key, used FROM cap_usage
      WHERE tool = ${rule.tool} AND rule = ${rule.name} AND window_start = ${windowStart(rule.window, now, this.tz)}
      AND used > 0 ORDER BY used DESC`;
    return rows.map((r) => ({ scopeKey: unPgKey(r.scope_key), used: r.used }));
  }

  /** When the rule's current window ends (the policy time zone's hour or day). */
  resetsAt(rule: CapRule, now: number): number {
    return windowEnd(rule.window, now, this.tz);
  }
}
