/**
 * Principal budgets and the principal loop breaker (DESIGN §3, budgets + loop breaker). Like caps, they live in
 * the database, so they hold across sessions, processes and (on a shared store) replicas:
 *  - `admit` (before a call, one BEGIN IMMEDIATE transaction): refuses while the principal's breaker is tripped
 *    or any matching rule is used up; otherwise reserves one call on every `calls` rule and counts the call's
 *    signature toward `identical_per_hour`, tripping the breaker when it goes over. Check and increment are one
 *    transaction, so N concurrent calls against a limit C admit exactly C.
 *  - `settle` (after the call): adds failures and result bytes, and moves the failure streak (a success ends it;
 *    going over `failures_in_a_row` trips the breaker until the hour ends).
 * A trip clears at the end of the window it happened in, or with `reset` (`itguard breaker reset`).
 */
import type { BudgetRule } from '../policy/schema.js';
import { windowEnd, windowStart } from '../windows.js';
import { immediate, relaxed, type Db } from './db.js';

export interface Trip {
  rule: 'identical_per_hour' | 'failures_in_a_row';
  why: string;
  trippedAt: number;
  clearsAt: number;
}

export interface BudgetAlarm {
  rule: BudgetRule;
  used: number;
  scopeKey: string;
}

export type AdmitResult =
  | { ok: true; alarms: BudgetAlarm[] }
  | { ok: false; kind: 'tripped'; trip: Trip; fresh: boolean }
  | { ok: false; kind: 'exhausted'; rule: BudgetRule; used: number; scopeKey: string; resetsAt: number };

export interface AdmitInput {
  principal: string;
  /** The 2025-11-25 session; undefined on 2026-07-28, where `per: session` rules count per principal. */
  sessionId: string | undefined;
  /** The rules that apply to this call's tool. */
  rules: readonly BudgetRule[];
  /** Tool + canonical action arguments, hashed; undefined for calls exempt from identical counting (polling). */
  sig: string | undefined;
  identicalPerHour: number;
  now: number;
}

export interface SettleInput {
  principal: string;
  sessionId: string | undefined;
  rules: readonly BudgetRule[];
  /** true: a failure; false: a success (ends the streak); undefined: neither (waiting on a human, a twin, a pause). */
  failed: boolean | undefined;
  resultBytes: number;
  failuresInARow: number;
  now: number;
}

export interface BudgetUsage {
  rule: string;
  measure: BudgetRule['measure'];
  per: BudgetRule['per'];
  window: BudgetRule['window'];
  scopeKey: string;
  used: number;
  limit: number;
  alarmAt: number | null;
  resetsAt: number;
}

export interface BreakerState {
  principal: string;
  streak: number;
  trip: Trip | undefined;
}

interface BreakerRow {
  principal: string;
  streak: number;
  tripped_rule: Trip['rule'] | null;
  tripped_why: string | null;
  tripped_at: number | null;
  clears_at: number | null;
}

/** A `per: session` rule without a session (2026-07-28 has none) counts per principal, the narrowest scope there is. */
const scopeKeyOf = (rule: BudgetRule, principal: string, sessionId: string | undefined): string =>
  rule.per === 'session' && sessionId !== undefined ? `${principal}\u0000${sessionId}` : principal;

export class BudgetStore {
  private readonly getUsage;
  private readonly addUsage;
  private readonly getBreaker;
  private readonly bumpIdentical;
  private readonly setStreak;
  private readonly setTrip;
  private readonly endStreak;
  constructor(
    readonly db: Db,
    private readonly tz: string,
  ) {
    this.getUsage = db.prepare<[string, string, number], { used: number; alarmed: number }>(
      'SELECT used, alarmed FROM budget_usage WHERE rule = ? AND scope_key = ? AND window_start = ?',
    );
    this.addUsage = db.prepare(
      `INSERT INTO budget_usage (rule, scope_key, window_start, used, alarmed) VALUES (@rule, @scopeKey, @windowStart, @amount, @alarmed)
       ON CONFLICT(rule, scope_key, window_start) DO UPDATE SET used = used + @amount, alarmed = max(alarmed, @alarmed)`,
    );
    this.getBreaker = db.prepare<[string], BreakerRow>('SELECT * FROM breaker WHERE principal = ?');
    this.bumpIdentical = db.prepare<[string, string, number], { count: number }>(
      `INSERT INTO breaker_identical (principal, sig, window_start, count) VALUES (?, ?, ?, 1)
       ON CONFLICT(principal, sig, window_start) DO UPDATE SET count = count + 1 RETURNING count`,
    );
    this.setStreak = db.prepare<[string, number, number]>(
      `INSERT INTO breaker (principal, streak) VALUES (?, ?) ON CONFLICT(principal) DO UPDATE SET streak = CASE WHEN ? < 0 THEN streak + 1 ELSE 0 END RETURNING streak`,
    );
    this.endStreak = db.prepare('UPDATE breaker SET streak = 0 WHERE principal = ? AND streak > 0');
    this.setTrip = db.prepare(
      `INSERT INTO breaker (principal, streak, tripped_rule, tripped_why, tripped_at, clears_at) VALUES (@principal, @streak, @rule, @why, @at, @clears)
       ON CONFLICT(principal) DO UPDATE SET streak = 0, tripped_rule = @rule, tripped_why = @why, tripped_at = @at, clears_at = @clears`,
    );
  }

  private lastPrune = 0;

  admit(i: AdmitInput): AdmitResult {
    this.maybePrune(i.now);
    // Durable before any side effect through the audit intent's strict commit that follows (see relaxed()).
    return relaxed(this.db, () => immediate(this.db, () => this.admitTx(i)));
  }

  private admitTx(i: AdmitInput): AdmitResult {
    const trip = this.activeTrip(i.principal, i.now);
    // Security: a tripped principal breaker refuses every call of the principal, in every session and process.
    if (trip) return { ok: false, kind: 'tripped', trip, fresh: false };
    const planned: { rule: BudgetRule; scopeKey: string; start: number; used: number; alarmed: number }[] = [];
    for (const rule of i.rules) {
      const scopeKey = scopeKeyOf(rule, i.principal, i.sessionId);
      const start = windowStart(rule.window, i.now, this.tz);
      const row = this.getUsage.get(rule.name, scopeKey, start);
      const used = row?.used ?? 0;
      // Security: `calls` reserves this call (check and increment in one transaction); failures and result bytes
      // are only known afterwards, so those rules refuse once they are used up.
      const over = rule.measure === 'calls' ? used + 1 > rule.limit : used >= rule.limit;
      if (over)
        return { ok: false, kind: 'exhausted', rule, used, scopeKey, resetsAt: windowEnd(rule.window, i.now, this.tz) };
      planned.push({ rule, scopeKey, start, used, alarmed: row?.alarmed ?? 0 });
    }
    if (i.sig !== undefined) {
      const start = windowStart('hour', i.now, this.tz);
      const seen = this.bumpIdentical.get(i.principal, i.sig, start)!.count;
      if (seen > i.identicalPerHour) {
        const fresh: Trip = {
          rule: 'identical_per_hour',
          why: `the same call was made ${seen} times this hour (identical_per_hour ${i.identicalPerHour})`,
          trippedAt: i.now,
          clearsAt: windowEnd('hour', i.now, this.tz),
        };
        this.writeTrip(i.principal, fresh);
        return { ok: false, kind: 'tripped', trip: fresh, fresh: true };
      }
    }
    const alarms: BudgetAlarm[] = [];
    for (const p of planned) {
      if (p.rule.measure !== 'calls') continue;
      const after = p.used + 1;
      const crosses = p.rule.alarmAt !== undefined && !p.alarmed && after >= p.rule.alarmAt;
      if (crosses) alarms.push({ rule: p.rule, used: after, scopeKey: p.scopeKey });
      this.addUsage.run({
        rule: p.rule.name,
        scopeKey: p.scopeKey,
        windowStart: p.start,
        amount: 1,
        alarmed: crosses ? 1 : 0,
      });
    }
    return { ok: true, alarms };
  }

  settle(i: SettleInput): { alarms: BudgetAlarm[]; trip: Trip | undefined } {
    return relaxed(this.db, () => immediate(this.db, () => this.settleTx(i)));
  }

  private settleTx(i: SettleInput): { alarms: BudgetAlarm[]; trip: Trip | undefined } {
    const alarms: BudgetAlarm[] = [];
    for (const rule of i.rules) {
      const amount =
        rule.measure === 'failures' ? (i.failed ? 1 : 0) : rule.measure === 'result_bytes' ? i.resultBytes : 0;
      if (!amount) continue;
      const scopeKey = scopeKeyOf(rule, i.principal, i.sessionId);
      const start = windowStart(rule.window, i.now, this.tz);
      const row = this.getUsage.get(rule.name, scopeKey, start);
      const after = (row?.used ?? 0) + amount;
      const crosses = rule.alarmAt !== undefined && !row?.alarmed && after >= rule.alarmAt;
      if (crosses) alarms.push({ rule, used: after, scopeKey });
      this.addUsage.run({ rule: rule.name, scopeKey, windowStart: start, amount, alarmed: crosses ? 1 : 0 });
    }
    if (i.failed === undefined) return { alarms, trip: undefined };
    // A success writes only when there is a streak to end (the common case, streak 0, leaves the WAL alone).
    if (!i.failed) {
      this.endStreak.run(i.principal);
      return { alarms, trip: undefined };
    }
    const streak = (this.setStreak.get(i.principal, 1, -1) as { streak: number }).streak;
    // "More than failures_in_a_row failures in a row" trips it; the next call is refused.
    if (i.failed && streak > i.failuresInARow && !this.activeTrip(i.principal, i.now)) {
      const trip: Trip = {
        rule: 'failures_in_a_row',
        why: `${streak} failed calls in a row (failures_in_a_row ${i.failuresInARow})`,
        trippedAt: i.now,
        clearsAt: windowEnd('hour', i.now, this.tz),
      };
      this.writeTrip(i.principal, trip);
      return { alarms, trip };
    }
    return { alarms, trip: undefined };
  }

  /** Windows end: counts older than two days are never read again. */
  private maybePrune(now: number): void {
    if (now - this.lastPrune < 60_000) return;
    this.lastPrune = now;
    const before = now - 2 * 86_400_000;
    relaxed(this.db, () => {
      this.db.prepare('DELETE FROM breaker_identical WHERE window_start < ?').run(before);
      this.db.prepare('DELETE FROM budget_usage WHERE window_start < ?').run(before);
    });
  }

  /** A trip starts a fresh streak: when it clears, the principal gets failures_in_a_row again, not one. */
  private writeTrip(principal: string, t: Trip): void {
    this.setTrip.run({ principal, streak: 0, rule: t.rule, why: t.why, at: t.trippedAt, clears: t.clearsAt });
  }

  private activeTrip(principal: string, now: number): Trip | undefined {
    const b = this.getBreaker.get(principal);
    if (!b?.tripped_rule || (b.clears_at ?? 0) <= now) return undefined;
    return { rule: b.tripped_rule, why: b.tripped_why ?? '', trippedAt: b.tripped_at ?? 0, clearsAt: b.clears_at ?? 0 };
  }

  breaker(principal: string, now: number): BreakerState {
    return { principal, streak: this.getBreaker.get(principal)?.streak ?? 0, trip: this.activeTrip(principal, now) };
  }

  /** Every principal with a streak or a trip in force. */
  breakers(now: number): BreakerState[] {
    return this.db
      .prepare<[], { principal: string }>(
        'SELECT principal FROM breaker WHERE streak > 0 OR tripped_rule IS NOT NULL ORDER BY principal',
      )
      .all()
      .map((r) => this.breaker(r.principal, now))
      .filter((b) => b.streak > 0 || b.trip);
  }

  /**
   * Clears the principal's breaker: the trip, the failure streak and this hour's identical-call counts (or the
   * next identical call would trip it again at once). Returns what was in force, for the audit.
   */
  reset(principal: string, now: number): BreakerState {
    return immediate(this.db, () => {
      const before = this.breaker(principal, now);
      this.db
        .prepare(
          'UPDATE breaker SET streak = 0, tripped_rule = NULL, tripped_why = NULL, tripped_at = NULL, clears_at = NULL WHERE principal = ?',
        )
        .run(principal);
      this.db
        .prepare('DELETE FROM breaker_identical WHERE principal = ? AND window_start >= ?')
        .run(principal, windowStart('hour', now, this.tz));
      return before;
    });
  }

  /**
   * Usage of each rule in its current window: for one principal (and session; without one, `per: session` rules
   * are read under the principal, as a sessionless call counts them), or the busiest keys of every principal.
   */
  usage(rules: readonly BudgetRule[], now: number, who?: { principal: string; sessionId?: string }): BudgetUsage[] {
    const out: BudgetUsage[] = [];
    for (const rule of rules) {
      const start = windowStart(rule.window, now, this.tz);
      const base = {
        rule: rule.name,
        measure: rule.measure,
        per: rule.per,
        window: rule.window,
        limit: rule.limit,
        alarmAt: rule.alarmAt ?? null,
        resetsAt: windowEnd(rule.window, now, this.tz),
      };
      if (who) {
        const scopeKey = scopeKeyOf(rule, who.principal, who.sessionId);
        out.push({ ...base, scopeKey, used: this.getUsage.get(rule.name, scopeKey, start)?.used ?? 0 });
        continue;
      }
      const rows = this.db
        .prepare<[string, number], { scope_key: string; used: number }>(
          'SELECT scope_key, used FROM budget_usage WHERE rule = ? AND window_start = ? AND used > 0 ORDER BY used DESC',
        )
        .all(rule.name, start);
      for (const r of rows) out.push({ ...base, scopeKey: r.scope_key.replace('\u0000', ' session '), used: r.used });
    }
    return out;
  }
}
