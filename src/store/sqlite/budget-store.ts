/**
 * Tasks, budgets and the breakers (DESIGN §3 step 4), at three levels, all in the store so they hold across
 * sessions, processes and protocol eras:
 *  - the task (`tasks`, `task_identical`): calls, minutes since the first call, result bytes, identical calls and
 *    failures in a row of one conversation or job. A tripped task refuses that task only. A task ends after
 *    `idle_minutes` without a call (refused calls keep it open: a runaway hammering a tripped task stays stopped);
 *    its id then starts a new task;
 *  - windowed `budgets` per principal, per user (the OAuth human) or per task (`budget_usage`);
 *  - the fleet breaker (`breaker`, `breaker_tasks`): trips the principal when `tripped_tasks_per_hour` different
 *    tasks tripped their own breakers within the hour.
 * `admit` (before a call) decides and counts in one BEGIN IMMEDIATE transaction — the task row is one more row of
 * it — so N concurrent calls against a limit C admit exactly C; `settle` (after the call, in the call's tail) adds
 * failures and result bytes and moves the task's failure streak.
 * Ended tasks are swept by index range (`last_call_at`, `seen_at`), at most once a minute, never by a full scan.
 */
import type { BudgetRule } from '../../policy/schema.js';
import { budgetScopeKey, describeScopeKey, taskKey, type TaskRef } from '../task-key.js';
import { windowEnd, windowStart } from '../../windows.js';
import { immediate, relaxed, type Db } from './db.js';
import type {
  TripRule,
  Trip,
  BudgetAlarm,
  TaskBounds,
  AdmitResult,
  AdmitInput,
  SettleInput,
  BudgetUsage,
  BreakerState,
  TaskState,
  TaskBound,
} from '../ports/types.js';
export type {
  TripRule,
  Trip,
  BudgetAlarm,
  TaskBounds,
  AdmitResult,
  AdmitInput,
  SettleInput,
  BudgetUsage,
  BreakerState,
  TaskState,
  TaskBound,
};

interface TaskRow {
  task_key: string;
  principal: string;
  source: TaskRef['source'];
  id: string;
  started_at: number;
  last_call_at: number;
  calls: number;
  result_bytes: number;
  streak: number;
  tripped_rule: TripRule | null;
  tripped_why: string | null;
  tripped_at: number | null;
}

interface BreakerRow {
  principal: string;
  tripped_rule: TripRule | null;
  tripped_why: string | null;
  tripped_at: number | null;
  clears_at: number | null;
}

export { budgetScopeKey, describeScopeKey };

const tripOfTask = (r: TaskRow): Trip | undefined =>
  r.tripped_rule
    ? { rule: r.tripped_rule, why: r.tripped_why ?? '', trippedAt: r.tripped_at ?? 0, clearsAt: null }
    : undefined;

const stateOf = (r: TaskRow): TaskState => ({
  principal: r.principal,
  source: r.source,
  id: r.id,
  startedAt: r.started_at,
  lastCallAt: r.last_call_at,
  calls: r.calls,
  resultBytes: r.result_bytes,
  streak: r.streak,
  trip: tripOfTask(r),
});

export class BudgetStore {
  private readonly getUsage;
  private readonly addUsage;
  private readonly getBreaker;
  private readonly setTrip;
  private readonly getTask;
  private readonly saveTask;
  private readonly bumpIdentical;
  private readonly addTrippedTask;
  private readonly countTrippedTasks;
  private readonly settleTask;
  private lastPrune = 0;

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
    this.getBreaker = db.prepare<[string], BreakerRow>(
      'SELECT principal, tripped_rule, tripped_why, tripped_at, clears_at FROM breaker WHERE principal = ?',
    );
    this.setTrip = db.prepare(
      `INSERT INTO breaker (principal, streak, tripped_rule, tripped_why, tripped_at, clears_at) VALUES (@principal, 0, @rule, @why, @at, @clears)
       ON CONFLICT(principal) DO UPDATE SET streak = 0, tripped_rule = @rule, tripped_why = @why, tripped_at = @at, clears_at = @clears`,
    );
    this.getTask = db.prepare<[string], TaskRow>('SELECT * FROM tasks WHERE task_key = ?');
    this.saveTask = db.prepare(
      `INSERT INTO tasks (task_key, principal, source, id, started_at, last_call_at, calls, result_bytes, streak, tripped_rule, tripped_why, tripped_at)
       VALUES (@task_key, @principal, @source, @id, @started_at, @last_call_at, @calls, @result_bytes, @streak, @tripped_rule, @tripped_why, @tripped_at)
       ON CONFLICT(task_key) DO UPDATE SET started_at = @started_at, last_call_at = @last_call_at, calls = @calls,
         result_bytes = @result_bytes, streak = @streak, tripped_rule = @tripped_rule, tripped_why = @tripped_why, tripped_at = @tripped_at`,
    );
    this.bumpIdentical = db.prepare<[{ key: string; started: number; sig: string; now: number }], { count: number }>(
      `INSERT INTO task_identical (task_key, task_started, sig, count, seen_at) VALUES (@key, @started, @sig, 1, @now)
       ON CONFLICT(task_key, task_started, sig) DO UPDATE SET count = count + 1, seen_at = @now RETURNING count`,
    );
    this.addTrippedTask = db.prepare<[string, number, string]>(
      'INSERT OR IGNORE INTO breaker_tasks (principal, window_start, task_key) VALUES (?, ?, ?)',
    );
    this.countTrippedTasks = db.prepare<[string, number], { n: number }>(
      'SELECT count(*) AS n FROM breaker_tasks WHERE principal = ? AND window_start = ?',
    );
    // After the call: a task swept between admit and settle is not brought back (it had ended).
    this.settleTask = db.prepare<[{ bytes: number; streak: number; key: string }]>(
      `UPDATE tasks SET result_bytes = result_bytes + @bytes,
         streak = CASE @streak WHEN 1 THEN streak + 1 WHEN 0 THEN 0 ELSE streak END
       WHERE task_key = @key`,
    );
  }

  admit(i: AdmitInput): AdmitResult {
    this.maybePrune(i.now, i.bounds.idleMs);
    // Durable before any side effect through the audit intent's strict commit that follows (see relaxed()).
    return relaxed(this.db, () => immediate(this.db, () => this.admitTx(i)));
  }

  private admitTx(i: AdmitInput): AdmitResult {
    const principalTrip = this.activeTrip(i.principal, i.now);
    // Security: a tripped fleet breaker refuses every call of the principal, in every task, process and replica.
    if (principalTrip) return { ok: false, kind: 'tripped', level: 'principal', trip: principalTrip, fresh: false };

    const key = taskKey(i.principal, i.task);
    const stored = this.getTask.get(key);
    // A task ends after idle_minutes without a call: its id starts a new task.
    const row = !stored || i.now - stored.last_call_at >= i.bounds.idleMs ? this.newTask(key, i) : stored;
    row.last_call_at = i.now;
    const refuse = (r: AdmitResult): AdmitResult => (this.saveTask.run(row), r);

    // Security: a tripped task stays stopped (its refused calls keep it open); other tasks are untouched.
    const trip = tripOfTask(row);
    if (trip) return refuse({ ok: false, kind: 'tripped', level: 'task', trip, fresh: false });
    const b = i.bounds;
    if (!i.polling && row.calls >= b.maxCalls)
      return refuse(this.taskExhausted(row, 'max_calls', row.calls, b.maxCalls));
    if (i.now - row.started_at >= b.maxMs)
      return refuse(
        this.taskExhausted(row, 'max_minutes', Math.floor((i.now - row.started_at) / 60_000), b.maxMs / 60_000),
      );
    if (row.result_bytes >= b.maxResultBytes)
      return refuse(this.taskExhausted(row, 'max_result_bytes', row.result_bytes, b.maxResultBytes));
    // "More than max_consecutive_failures in a row" (DESIGN §3): the call after the (N+1)th failure is refused.
    if (row.streak > b.maxConsecutiveFailures)
      return this.tripTask(row, i, {
        rule: 'max_consecutive_failures',
        why: `${row.streak} failed calls in a row (max_consecutive_failures ${b.maxConsecutiveFailures})`,
        trippedAt: i.now,
        clearsAt: null,
      });

    const planned: { rule: BudgetRule; scopeKey: string; start: number; used: number; alarmed: number }[] = [];
    for (const rule of i.rules) {
      const scopeKey = budgetScopeKey(rule, { principal: i.principal, task: i.task, user: i.user });
      // A `per: user` rule does not apply to a call no human stands behind (DESIGN §8).
      if (scopeKey === undefined) continue;
      const start = windowStart(rule.window, i.now, this.tz);
      const usage = this.getUsage.get(rule.name, scopeKey, start);
      const used = usage?.used ?? 0;
      // Security: `calls` reserves this call (check and increment in one transaction); failures and result bytes
      // are only known afterwards, so those rules refuse once they are used up.
      const over = rule.measure === 'calls' ? used + 1 > rule.limit : used >= rule.limit;
      if (over)
        return refuse({
          ok: false,
          kind: 'exhausted',
          rule,
          used,
          scopeKey,
          resetsAt: windowEnd(rule.window, i.now, this.tz),
        });
      planned.push({ rule, scopeKey, start, used, alarmed: usage?.alarmed ?? 0 });
    }

    if (i.sig !== undefined) {
      const seen = this.bumpIdentical.get({ key, started: row.started_at, sig: i.sig, now: i.now })!.count;
      if (seen > b.maxIdenticalCalls)
        return this.tripTask(row, i, {
          rule: 'max_identical_calls',
          why: `the same call was made ${seen} times in this task (max_identical_calls ${b.maxIdenticalCalls})`,
          trippedAt: i.now,
          clearsAt: null,
        });
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
    if (!i.polling) row.calls += 1;
    this.saveTask.run(row);
    return { ok: true, alarms };
  }

  private newTask(key: string, i: AdmitInput): TaskRow {
    return {
      task_key: key,
      principal: i.principal,
      source: i.task.source,
      id: i.task.id,
      started_at: i.now,
      last_call_at: i.now,
      calls: 0,
      result_bytes: 0,
      streak: 0,
      tripped_rule: null,
      tripped_why: null,
      tripped_at: null,
    };
  }

  private taskExhausted(row: TaskRow, bound: TaskBound, used: number, limit: number): AdmitResult {
    return { ok: false, kind: 'task_exhausted', bound, used, limit, startedAt: row.started_at };
  }

  /** Trips one task, and the principal too when this makes `tripped_tasks_per_hour` different tasks this hour. */
  private tripTask(row: TaskRow, i: AdmitInput, trip: Trip): AdmitResult {
    row.tripped_rule = trip.rule;
    row.tripped_why = trip.why;
    row.tripped_at = trip.trippedAt;
    this.saveTask.run(row);
    const hour = windowStart('hour', i.now, this.tz);
    this.addTrippedTask.run(i.principal, hour, row.task_key);
    const n = this.countTrippedTasks.get(i.principal, hour)!.n;
    if (n < i.trippedTasksPerHour) return { ok: false, kind: 'tripped', level: 'task', trip, fresh: true };
    const fleet: Trip = {
      rule: 'tripped_tasks_per_hour',
      why: `${n} different tasks tripped their loop breakers this hour (tripped_tasks_per_hour ${i.trippedTasksPerHour})`,
      trippedAt: i.now,
      clearsAt: windowEnd('hour', i.now, this.tz),
    };
    this.writeTrip(i.principal, fleet);
    return { ok: false, kind: 'tripped', level: 'task', trip, fresh: true, fleet };
  }

  /**
   * A read, no write lock: would `admit` refuse this call now (a tripped fleet breaker or task, a task bound or a
   * windowed budget used up)? Lets the budget step refuse before scope and validation look at the call (DESIGN §3),
   * without a transaction; `admit` stays the decision, exact under concurrency. Identical-call trips are found only
   * by `admit` (they need the count).
   */
  wouldRefuse(i: AdmitInput): boolean {
    if (this.activeTrip(i.principal, i.now)) return true;
    const row = this.getTask.get(taskKey(i.principal, i.task));
    if (row && i.now - row.last_call_at < i.bounds.idleMs) {
      const b = i.bounds;
      if (tripOfTask(row)) return true;
      if (!i.polling && row.calls >= b.maxCalls) return true;
      if (i.now - row.started_at >= b.maxMs || row.result_bytes >= b.maxResultBytes) return true;
      if (row.streak > b.maxConsecutiveFailures) return true;
    }
    for (const rule of i.rules) {
      const scopeKey = budgetScopeKey(rule, { principal: i.principal, task: i.task, user: i.user });
      if (scopeKey === undefined) continue;
      const used = this.getUsage.get(rule.name, scopeKey, windowStart(rule.window, i.now, this.tz))?.used ?? 0;
      if (rule.measure === 'calls' ? used + 1 > rule.limit : used >= rule.limit) return true;
    }
    return false;
  }

  settle(i: SettleInput): { alarms: BudgetAlarm[] } {
    return relaxed(this.db, () => immediate(this.db, () => this.settleInTx(i)));
  }

  /** Inside a unit's transaction. */
  settleInTx(i: SettleInput): { alarms: BudgetAlarm[] } {
    const alarms: BudgetAlarm[] = [];
    for (const rule of i.rules) {
      const amount =
        rule.measure === 'failures' ? (i.failed ? 1 : 0) : rule.measure === 'result_bytes' ? i.resultBytes : 0;
      if (!amount) continue;
      const scopeKey = budgetScopeKey(rule, { principal: i.principal, task: i.task, user: i.user });
      if (scopeKey === undefined) continue;
      const start = windowStart(rule.window, i.now, this.tz);
      const row = this.getUsage.get(rule.name, scopeKey, start);
      const after = (row?.used ?? 0) + amount;
      const crosses = rule.alarmAt !== undefined && !row?.alarmed && after >= rule.alarmAt;
      if (crosses) alarms.push({ rule, used: after, scopeKey });
      this.addUsage.run({ rule: rule.name, scopeKey, windowStart: start, amount, alarmed: crosses ? 1 : 0 });
    }
    const streak = i.failed === undefined ? -1 : i.failed ? 1 : 0;
    if (i.resultBytes || streak !== -1)
      this.settleTask.run({ bytes: i.resultBytes, streak, key: taskKey(i.principal, i.task) });
    return { alarms };
  }

  /** Windows end and tasks go idle: rows no one reads again are deleted by index range, at most once a minute. */
  private maybePrune(now: number, idleMs: number): void {
    if (now - this.lastPrune < 60_000) return;
    this.lastPrune = now;
    const before = now - 2 * 86_400_000;
    relaxed(this.db, () => {
      this.db.prepare('DELETE FROM budget_usage WHERE window_start < ?').run(before);
      this.db.prepare('DELETE FROM breaker_tasks WHERE window_start < ?').run(before);
      this.db
        .prepare('DELETE FROM tasks WHERE task_key IN (SELECT task_key FROM tasks WHERE last_call_at < ? LIMIT 10000)')
        .run(now - idleMs);
      this.db
        .prepare(
          'DELETE FROM task_identical WHERE rowid IN (SELECT rowid FROM task_identical WHERE seen_at < ? LIMIT 10000)',
        )
        .run(now - idleMs);
    });
  }

  private writeTrip(principal: string, t: Trip): void {
    this.setTrip.run({ principal, rule: t.rule, why: t.why, at: t.trippedAt, clears: t.clearsAt });
  }

  private activeTrip(principal: string, now: number): Trip | undefined {
    const b = this.getBreaker.get(principal);
    if (!b?.tripped_rule || (b.clears_at ?? 0) <= now) return undefined;
    return { rule: b.tripped_rule, why: b.tripped_why ?? '', trippedAt: b.tripped_at ?? 0, clearsAt: b.clears_at ?? 0 };
  }

  breaker(principal: string, now: number): BreakerState {
    return {
      principal,
      trippedTasks: this.countTrippedTasks.get(principal, windowStart('hour', now, this.tz))!.n,
      trip: this.activeTrip(principal, now),
    };
  }

  /** Every principal with a fleet trip in force or a tripped task this hour. */
  breakers(now: number): BreakerState[] {
    return this.db
      .prepare<[number], { principal: string }>(
        `SELECT principal FROM breaker WHERE tripped_rule IS NOT NULL
         UNION SELECT principal FROM breaker_tasks WHERE window_start = ? ORDER BY principal`,
      )
      .all(windowStart('hour', now, this.tz))
      .map((r) => this.breaker(r.principal, now))
      .filter((b) => b.trippedTasks > 0 || b.trip);
  }

  /**
   * Clears the principal's fleet breaker and this hour's count of tripped tasks (or the next task trip would trip
   * it again at once). Tripped tasks stay tripped: `resetTask` clears one. Returns what was in force, for the audit.
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
        .prepare('DELETE FROM breaker_tasks WHERE principal = ? AND window_start >= ?')
        .run(principal, windowStart('hour', now, this.tz));
      return before;
    });
  }

  /**
   * Clears a task's breaker (the trip, its failure streak and its identical-call counts) for every open task with
   * this id (of any principal, unless one is named). Returns the tasks as they were, for the audit.
   */
  resetTask(id: string, idleMs: number, now: number, principal?: string): TaskState[] {
    return immediate(this.db, () => {
      const rows = this.openRows(idleMs, now).filter((r) => r.id === id && (!principal || r.principal === principal));
      for (const r of rows) {
        this.db
          .prepare(
            'UPDATE tasks SET streak = 0, tripped_rule = NULL, tripped_why = NULL, tripped_at = NULL WHERE task_key = ?',
          )
          .run(r.task_key);
        this.db
          .prepare('DELETE FROM task_identical WHERE task_key = ? AND task_started = ?')
          .run(r.task_key, r.started_at);
      }
      return rows.map(stateOf);
    });
  }

  private openRows(idleMs: number, now: number, o: { tripped?: boolean; limit?: number } = {}): TaskRow[] {
    return this.db
      .prepare<[number, number], TaskRow>(
        `SELECT * FROM tasks WHERE last_call_at > ? ${o.tripped ? 'AND tripped_rule IS NOT NULL' : ''}
         ORDER BY last_call_at DESC LIMIT ?`,
      )
      .all(now - idleMs, o.limit ?? 1_000_000);
  }

  /** Open tasks (a call within idle_minutes), most recent first. */
  tasks(idleMs: number, now: number, o: { tripped?: boolean; limit?: number } = {}): TaskState[] {
    return this.openRows(idleMs, now, o).map(stateOf);
  }

  /** One task as it stands now; undefined when it has no state or has ended (its next call starts it afresh). */
  task(principal: string, t: TaskRef, idleMs: number, now: number): TaskState | undefined {
    const row = this.getTask.get(taskKey(principal, t));
    return row && now - row.last_call_at < idleMs ? stateOf(row) : undefined;
  }

  /** For the gauges: open tasks and how many of them are tripped (an index range over open tasks only). */
  taskCounts(idleMs: number, now: number): { open: number; tripped: number } {
    const r = this.db
      .prepare<[number], { open: number; tripped: number | null }>(
        'SELECT count(*) AS open, sum(tripped_rule IS NOT NULL) AS tripped FROM tasks WHERE last_call_at > ?',
      )
      .get(now - idleMs)!;
    return { open: r.open, tripped: r.tripped ?? 0 };
  }

  /**
   * Usage of each rule in its current window: for one caller (its principal, task and user), or the busiest keys
   * of every principal, user and task.
   */
  usage(
    rules: readonly BudgetRule[],
    now: number,
    who?: { principal: string; task?: TaskRef | undefined; user?: string | undefined },
  ): BudgetUsage[] {
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
        const scopeKey = budgetScopeKey(rule, who);
        if (scopeKey === undefined) continue;
        out.push({ ...base, scopeKey, used: this.getUsage.get(rule.name, scopeKey, start)?.used ?? 0 });
        continue;
      }
      const rows = this.db
        .prepare<[string, number], { scope_key: string; used: number }>(
          'SELECT scope_key, used FROM budget_usage WHERE rule = ? AND window_start = ? AND used > 0 ORDER BY used DESC LIMIT 1000',
        )
        .all(rule.name, start);
      for (const r of rows) out.push({ ...base, scopeKey: describeScopeKey(r.scope_key), used: r.used });
    }
    return out;
  }
}
