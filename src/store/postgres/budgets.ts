/**
 * Tasks, windowed budgets and the fleet breaker on PostgreSQL (BudgetsPort), with the SQLite adapter's decisions
 * (sqlite/budget-store.ts) reproduced step for step. SQLite serializes a whole admit under its write lock; here each
 * key is serialized by its own row:
 *  - the task row is created or locked by one `INSERT … ON CONFLICT DO UPDATE … RETURNING` (joined with the
 *    principal's breaker row in the same statement), so admissions of one task run one after the other;
 *  - a `calls` rule is reserved by a conditional upsert (`… DO UPDATE SET used = used + 1 WHERE used + 1 <= limit
 *    RETURNING`), so N concurrent calls against limit C admit exactly C; when a later rule or the identical-call
 *    breaker refuses the call, what this admission reserved is given back in the same transaction (its rows are
 *    still locked by it, so no one saw the reservation);
 *  - tripping a task locks the principal's breaker row before counting this hour's tripped tasks, so concurrent
 *    trips count exactly.
 * Windows are computed in JS from the call's `now` in the policy time zone, exactly as SQLite does; a serving process
 * on PostgreSQL times its calls by the database's clock (clock.ts), so every replica's windows agree. The operator
 * surfaces' views and resets
 * (BudgetsViews) are in budget-views.ts.
 */
import type { BudgetRule } from '../../policy/schema.js';
import { windowEnd, windowStart } from '../../windows.js';
import type { BudgetsViews } from '../ports/index.js';
import type {
  AdmitInput,
  AdmitResult,
  BreakerState,
  BudgetAlarm,
  BudgetUsage,
  SettleInput,
  TaskBound,
  TaskState,
  Trip,
} from '../ports/types.js';
import { budgetScopeKey, taskKey, type TaskRef } from '../task-key.js';
import type { Tx } from '../unit.js';
import * as views from './budget-views.js';
import { activeTrip, breakerOf, tripOfTask, type Breaker, type TaskRow } from './budget-views.js';
import type { PgStore } from './connect.js';
import { pgKey, type Q, txOf } from './runner.js';

interface Reserved {
  rule: BudgetRule;
  scopeKey: string;
  start: number;
  after: number;
  alarmed: number;
}

export class PgBudgets implements BudgetsViews {
  private lastPrune = 0;
  constructor(
    private readonly pg: PgStore,
    private readonly tz: string,
  ) {}

  async admit(t: Tx, i: AdmitInput): Promise<AdmitResult> {
    this.maybePrune(i.now, i.bounds.idleMs);
    const tx = txOf(t);
    const key = pgKey(taskKey(i.principal, i.task));
    const [r] = await tx<(TaskRow & Breaker & { inserted: boolean })[]>`
      WITH t AS (
        INSERT INTO tasks (task_key, principal, source, id, started_at, last_call_at, calls, result_bytes, streak)
        VALUES (${key}, ${i.principal}, ${i.task.source}, ${i.task.id}, ${i.now}, ${i.now}, 0, 0, 0)
        ON CONFLICT (task_key) DO UPDATE SET task_key = EXCLUDED.task_key
        RETURNING *, (xmax = 0) AS inserted)
      SELECT t.*, b.tripped_rule AS b_rule, b.tripped_why AS b_why, b.tripped_at AS b_at, b.clears_at AS b_clears
      FROM t LEFT JOIN breaker b ON b.principal = ${i.principal}`;
    if (!r) throw new Error('the task row was not returned');
    const principalTrip = activeTrip(r, i.now);
    // Security: a tripped fleet breaker refuses every call of the principal, in every task, process and replica.
    if (principalTrip) {
      // As SQLite: a refused call of a tripped principal leaves no task behind.
      if (r.inserted) await tx`DELETE FROM tasks WHERE task_key = ${key}`;
      return { ok: false, kind: 'tripped', level: 'principal', trip: principalTrip, fresh: false };
    }
    const stored: TaskRow = {
      task_key: r.task_key,
      principal: r.principal,
      source: r.source,
      id: r.id,
      started_at: r.started_at,
      last_call_at: r.last_call_at,
      calls: r.calls,
      result_bytes: r.result_bytes,
      streak: r.streak,
      tripped_rule: r.tripped_rule,
      tripped_why: r.tripped_why,
      tripped_at: r.tripped_at,
    };
    // A task ends after idle_minutes without a call: its id starts a new task.
    const row = r.inserted || i.now - stored.last_call_at >= i.bounds.idleMs ? this.newTask(key, i) : stored;
    row.last_call_at = i.now;
    const reserved: Reserved[] = [];
    const refuse = async (res: AdmitResult): Promise<AdmitResult> => {
      await this.giveBack(tx, reserved);
      await this.saveTask(tx, row);
      return res;
    };

    // Security: a tripped task stays stopped (its refused calls keep it open); other tasks are untouched.
    const trip = tripOfTask(row);
    if (trip) return refuse({ ok: false, kind: 'tripped', level: 'task', trip, fresh: false });
    const b = i.bounds;
    const exhausted = (bound: TaskBound, used: number, limit: number): AdmitResult => ({
      ok: false,
      kind: 'task_exhausted',
      bound,
      used,
      limit,
      startedAt: row.started_at,
    });
    if (!i.polling && row.calls >= b.maxCalls) return refuse(exhausted('max_calls', row.calls, b.maxCalls));
    if (i.now - row.started_at >= b.maxMs)
      return refuse(exhausted('max_minutes', Math.floor((i.now - row.started_at) / 60_000), b.maxMs / 60_000));
    if (row.result_bytes >= b.maxResultBytes)
      return refuse(exhausted('max_result_bytes', row.result_bytes, b.maxResultBytes));
    if (row.streak > b.maxConsecutiveFailures)
      return this.tripTask(tx, row, i, {
        rule: 'max_consecutive_failures',
        why: `${row.streak} failed calls in a row (max_consecutive_failures ${b.maxConsecutiveFailures})`,
        trippedAt: i.now,
        clearsAt: null,
      });

    for (const rule of i.rules) {
      const scopeKey = budgetScopeKey(rule, { principal: i.principal, task: i.task, user: i.user });
      if (scopeKey === undefined) continue;
      const start = windowStart(rule.window, i.now, this.tz);
      if (rule.measure === 'calls' && rule.limit >= 1) {
        // Security: check and increment in one statement, under the row's lock: exact across replicas.
        const [u] = await tx<{ used: number; alarmed: number }[]>`
          INSERT INTO budget_usage (rule, scope_key, window_start, used, alarmed)
          VALUES (${rule.name}, ${pgKey(scopeKey)}, ${start}, 1, 0)
          ON CONFLICT (rule, scope_key, window_start) DO UPDATE SET used = budget_usage.used + 1
          WHERE budget_usage.used + 1 <= ${rule.limit}
          RETURNING used, alarmed`;
        if (u) {
          reserved.push({ rule, scopeKey, start, after: u.used, alarmed: u.alarmed });
          continue;
        }
      }
      const used = await this.usedOf(tx, rule.name, scopeKey, start);
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
    }

    if (i.sig !== undefined) {
      const [c] = await tx<{ count: number }[]>`
        INSERT INTO task_identical (task_key, task_started, sig, count, seen_at)
        VALUES (${key}, ${row.started_at}, ${i.sig}, 1, ${i.now})
        ON CONFLICT (task_key, task_started, sig) DO UPDATE SET count = task_identical.count + 1, seen_at = ${i.now}
        RETURNING count`;
      const seen = c!.count;
      if (seen > b.maxIdenticalCalls) {
        await this.giveBack(tx, reserved);
        return this.tripTask(tx, row, i, {
          rule: 'max_identical_calls',
          why: `the same call was made ${seen} times in this task (max_identical_calls ${b.maxIdenticalCalls})`,
          trippedAt: i.now,
          clearsAt: null,
        });
      }
    }

    const alarms: BudgetAlarm[] = [];
    for (const p of reserved) {
      if (p.rule.alarmAt === undefined || p.alarmed || p.after < p.rule.alarmAt) continue;
      alarms.push({ rule: p.rule, used: p.after, scopeKey: p.scopeKey });
      await tx`UPDATE budget_usage SET alarmed = 1
               WHERE rule = ${p.rule.name} AND scope_key = ${pgKey(p.scopeKey)} AND window_start = ${p.start}`;
    }
    if (!i.polling) row.calls += 1;
    await this.saveTask(tx, row);
    return { ok: true, alarms };
  }

  /** A reservation this admission made and then refused: given back under the same locks, before anyone saw it. */
  private async giveBack(tx: Q, reserved: Reserved[]): Promise<void> {
    for (const p of reserved.splice(0))
      await tx`UPDATE budget_usage SET used = used - 1
               WHERE rule = ${p.rule.name} AND scope_key = ${pgKey(p.scopeKey)} AND window_start = ${p.start}`;
  }

  private async usedOf(q: Q, rule: string, scopeKey: string, start: number): Promise<number> {
    const [u] = await q<{ used: number }[]>`
      SELECT used FROM budget_usage WHERE rule = ${rule} AND scope_key = ${pgKey(scopeKey)} AND window_start = ${start}`;
    return u?.used ?? 0;
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

  private async saveTask(tx: Q, r: TaskRow): Promise<void> {
    await tx`UPDATE tasks SET started_at = ${r.started_at}, last_call_at = ${r.last_call_at}, calls = ${r.calls},
               result_bytes = ${r.result_bytes}, streak = ${r.streak}, tripped_rule = ${r.tripped_rule},
               tripped_why = ${r.tripped_why}, tripped_at = ${r.tripped_at}
             WHERE task_key = ${r.task_key}`;
  }

  /** Trips one task, and the principal too when this makes `tripped_tasks_per_hour` different tasks this hour. */
  private async tripTask(tx: Q, row: TaskRow, i: AdmitInput, trip: Trip): Promise<AdmitResult> {
    row.tripped_rule = trip.rule;
    row.tripped_why = trip.why;
    row.tripped_at = trip.trippedAt;
    await this.saveTask(tx, row);
    const hour = windowStart('hour', i.now, this.tz);
    // The principal's breaker row, locked: concurrent trips of its tasks count one after the other.
    await tx`INSERT INTO breaker (principal) VALUES (${i.principal})
             ON CONFLICT (principal) DO UPDATE SET principal = EXCLUDED.principal`;
    await tx`INSERT INTO breaker_tasks (principal, window_start, task_key) VALUES (${i.principal}, ${hour}, ${row.task_key})
             ON CONFLICT DO NOTHING`;
    const [c] = await tx<{ n: number }[]>`
      SELECT count(*)::INTEGER AS n FROM breaker_tasks WHERE principal = ${i.principal} AND window_start = ${hour}`;
    const n = c!.n;
    if (n < i.trippedTasksPerHour) return { ok: false, kind: 'tripped', level: 'task', trip, fresh: true };
    const fleet: Trip = {
      rule: 'tripped_tasks_per_hour',
      why: `${n} different tasks tripped their loop breakers this hour (tripped_tasks_per_hour ${i.trippedTasksPerHour})`,
      trippedAt: i.now,
      clearsAt: windowEnd('hour', i.now, this.tz),
    };
    await tx`UPDATE breaker SET streak = 0, tripped_rule = ${fleet.rule}, tripped_why = ${fleet.why},
               tripped_at = ${fleet.trippedAt}, clears_at = ${fleet.clearsAt} WHERE principal = ${i.principal}`;
    return { ok: false, kind: 'tripped', level: 'task', trip, fresh: true, fleet };
  }

  /** A read on the pool, no lock (BudgetStore.wouldRefuse's rules): `admit` stays the decision. */
  async wouldRefuse(i: AdmitInput): Promise<boolean> {
    const sql = this.pg.sql;
    if (activeTrip(await breakerOf(sql, i.principal), i.now)) return true;
    const [row] = await sql<TaskRow[]>`SELECT * FROM tasks WHERE task_key = ${pgKey(taskKey(i.principal, i.task))}`;
    if (row && i.now - row.last_call_at < i.bounds.idleMs) {
      const bd = i.bounds;
      if (tripOfTask(row)) return true;
      if (!i.polling && row.calls >= bd.maxCalls) return true;
      if (i.now - row.started_at >= bd.maxMs || row.result_bytes >= bd.maxResultBytes) return true;
      if (row.streak > bd.maxConsecutiveFailures) return true;
    }
    for (const rule of i.rules) {
      const scopeKey = budgetScopeKey(rule, { principal: i.principal, task: i.task, user: i.user });
      if (scopeKey === undefined) continue;
      const used = await this.usedOf(sql, rule.name, scopeKey, windowStart(rule.window, i.now, this.tz));
      if (rule.measure === 'calls' ? used + 1 > rule.limit : used >= rule.limit) return true;
    }
    return false;
  }

  async settle(t: Tx, i: SettleInput): Promise<{ alarms: BudgetAlarm[] }> {
    const tx = txOf(t);
    // The task row first, then usage rows: the order admit locks them in.
    const streak = i.failed === undefined ? -1 : i.failed ? 1 : 0;
    // After the call: a task swept between admit and settle is not brought back (it had ended).
    if (i.resultBytes || streak !== -1)
      await tx`UPDATE tasks SET result_bytes = result_bytes + ${i.resultBytes},
                 streak = CASE ${streak}::INTEGER WHEN 1 THEN streak + 1 WHEN 0 THEN 0 ELSE streak END
               WHERE task_key = ${pgKey(taskKey(i.principal, i.task))}`;
    const alarms: BudgetAlarm[] = [];
    for (const rule of i.rules) {
      const amount =
        rule.measure === 'failures' ? (i.failed ? 1 : 0) : rule.measure === 'result_bytes' ? i.resultBytes : 0;
      if (!amount) continue;
      const scopeKey = budgetScopeKey(rule, { principal: i.principal, task: i.task, user: i.user });
      if (scopeKey === undefined) continue;
      const start = windowStart(rule.window, i.now, this.tz);
      const [u] = await tx<{ used: number; alarmed: number }[]>`
        INSERT INTO budget_usage (rule, scope_key, window_start, used, alarmed)
        VALUES (${rule.name}, ${pgKey(scopeKey)}, ${start}, ${amount}, 0)
        ON CONFLICT (rule, scope_key, window_start) DO UPDATE SET used = budget_usage.used + EXCLUDED.used
        RETURNING used, alarmed`;
      if (rule.alarmAt !== undefined && !u!.alarmed && u!.used >= rule.alarmAt) {
        alarms.push({ rule, used: u!.used, scopeKey });
        await tx`UPDATE budget_usage SET alarmed = 1
                 WHERE rule = ${rule.name} AND scope_key = ${pgKey(scopeKey)} AND window_start = ${start}`;
      }
    }
    return { alarms };
  }

  // The operator surfaces' views and resets (budget-views.ts): reads on the pool, resets in the caller's unit.

  tasks(idleMs: number, now: number, o?: { tripped?: boolean; limit?: number }): Promise<TaskState[]> {
    return views.openTasks(this.pg.sql, idleMs, now, o).then((rows) => rows.map(views.stateOf));
  }

  task(principal: string, t: TaskRef, idleMs: number, now: number): Promise<TaskState | undefined> {
    return views.openTask(this.pg.sql, principal, t, idleMs, now);
  }

  taskCounts(idleMs: number, now: number): Promise<{ open: number; tripped: number }> {
    return views.taskCounts(this.pg.sql, idleMs, now);
  }

  usage(
    rules: readonly BudgetRule[],
    now: number,
    who?: { principal: string; task?: TaskRef | undefined; user?: string | undefined },
  ): Promise<BudgetUsage[]> {
    return views.usage(this.pg.sql, this.tz, rules, now, who);
  }

  breaker(principal: string, now: number): Promise<BreakerState> {
    return views.breaker(this.pg.sql, this.tz, principal, now);
  }

  breakers(now: number): Promise<BreakerState[]> {
    return views.breakers(this.pg.sql, this.tz, now);
  }

  reset(t: Tx, principal: string, now: number): Promise<BreakerState> {
    return views.resetBreaker(txOf(t), this.tz, principal, now);
  }

  resetTask(t: Tx, id: string, idleMs: number, now: number): Promise<TaskState[]> {
    return views.resetTask(txOf(t), id, idleMs, now);
  }

  /** Windows end and tasks go idle: swept by index range at most once a minute, on the pool, outside any unit. */
  private maybePrune(now: number, idleMs: number): void {
    if (now - this.lastPrune < 60_000) return;
    this.lastPrune = now;
    const before = now - 2 * 86_400_000;
    const sql = this.pg.sql;
    void Promise.all([
      sql`DELETE FROM budget_usage WHERE window_start < ${before}`,
      sql`DELETE FROM breaker_tasks WHERE window_start < ${before}`,
      sql`DELETE FROM tasks WHERE task_key IN (SELECT task_key FROM tasks WHERE last_call_at < ${now - idleMs} LIMIT 10000)`,
      sql`DELETE FROM task_identical WHERE ctid IN (SELECT ctid FROM task_identical WHERE seen_at < ${now - idleMs} LIMIT 10000)`,
    ]).catch(() => undefined);
  }
}
