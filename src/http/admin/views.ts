/**
 * The admin API's documents: one zod schema per response (the OpenAPI document's components are generated from
 * these, so the document and the code cannot drift) and the functions that build each from the stores. Keys are
 * snake_case and times ISO 8601, as in the CLI's `--json` (DESIGN §7); the approval and notification views are the
 * CLI's (`approvals list --json`, src/notify/admin.ts).
 */
import { z } from 'zod';
import type { App } from '../../app.js';
import type { ApprovalRow } from '../../store/ports/index.js';
import type { AuditRow } from '../../store/ports/index.js';
import type { TaskState } from '../../store/ports/index.js';
import type { KillSwitchState } from '../../store/ports/index.js';

const iso = (ms: number | null | undefined): string | null => (ms ? new Date(ms).toISOString() : null);
const Time = z.string().meta({ format: 'date-time' });
const NullableTime = Time.nullable();

export const ErrorDoc = z
  .object({ error: z.object({ code: z.string(), message: z.string() }).loose() })
  .meta({ id: 'Error', description: 'Every error: an UPPER_SNAKE code and one sentence.' });

export const Approval = z
  .object({
    id: z.string(),
    status: z.enum(['pending', 'approved', 'executing', 'succeeded', 'failed', 'denied', 'expired']),
    tier: z.string(),
    requested_by: z.string(),
    on_behalf_of: z.string().nullable(),
    task_id: z.string().nullable(),
    tool: z.string(),
    target: z.string().nullable(),
    summary: z.string(),
    reason: z.string(),
    args: z.record(z.string(), z.unknown()),
    caps: z.array(z.unknown()),
    created_at: Time,
    expires_at: Time,
    decided_by: z.string().nullable(),
    decided_at: NullableTime,
    note: z.string().nullable(),
  })
  .meta({ id: 'Approval' });

export function approvalView(r: ApprovalRow): z.infer<typeof Approval> {
  const parse = (s: string, fallback: unknown) => {
    try {
      return JSON.parse(s) as unknown;
    } catch {
      return fallback;
    }
  };
  return {
    id: r.id,
    status: r.status,
    tier: r.tier,
    requested_by: r.principal,
    on_behalf_of: r.on_behalf_of,
    task_id: r.task_id,
    tool: r.tool,
    target: r.target,
    summary: r.summary,
    reason: r.reason,
    args: parse(r.args, {}) as Record<string, unknown>,
    caps: parse(r.caps, []) as unknown[],
    created_at: iso(r.created_at)!,
    expires_at: iso(r.expires_at)!,
    decided_by: r.decided_by,
    decided_at: iso(r.decided_at),
    note: r.note,
  };
}

export const ApprovalList = z.object({ approvals: z.array(Approval) }).meta({ id: 'ApprovalList' });

export const KillSwitch = z
  .object({ engaged: z.boolean(), reason: z.string(), actor: z.string(), changed_at: NullableTime })
  .meta({ id: 'KillSwitch' });
export const killSwitchView = (k: KillSwitchState): z.infer<typeof KillSwitch> => ({
  engaged: k.engaged,
  reason: k.reason,
  actor: k.actor,
  changed_at: iso(k.changedAt),
});

export const Task = z
  .object({
    task: z.string(),
    principal: z.string(),
    identified_by: z.string(),
    started_at: Time,
    last_call_at: Time,
    calls: z.number().int(),
    calls_left: z.number().int(),
    result_bytes: z.number().int(),
    failures_in_a_row: z.number().int(),
    state: z.enum(['open', 'tripped']),
    rule: z.string().optional(),
    why: z.string().optional(),
    tripped_at: Time.optional(),
  })
  .meta({ id: 'Task' });
export const TaskList = z
  .object({ open: z.number().int(), tripped: z.number().int(), tasks: z.array(Task) })
  .meta({ id: 'TaskList' });

const taskView = (t: TaskState, maxCalls: number): z.infer<typeof Task> => ({
  task: t.id,
  principal: t.principal,
  identified_by: t.source,
  started_at: iso(t.startedAt)!,
  last_call_at: iso(t.lastCallAt)!,
  calls: t.calls,
  calls_left: Math.max(0, maxCalls - t.calls),
  result_bytes: t.resultBytes,
  failures_in_a_row: t.streak,
  state: t.trip ? 'tripped' : 'open',
  ...(t.trip ? { rule: t.trip.rule, why: t.trip.why, tripped_at: iso(t.trip.trippedAt)! } : {}),
});

/** `itguard tasks --json`'s document. */
export async function tasksView(
  app: Pick<App, 'policy' | 'store'>,
  tripped: boolean,
  now: number,
): Promise<z.infer<typeof TaskList>> {
  const idleMs = app.policy.task.idleMinutes * 60_000;
  const list = await app.store.budgets.tasks(idleMs, now, { tripped, limit: 1000 });
  const counts = await app.store.budgets.taskCounts(idleMs, now);
  return { ...counts, tasks: list.map((t) => taskView(t, app.policy.task.maxCalls)) };
}

export const Budgets = z
  .object({
    budgets: z.array(
      z.object({
        rule: z.string(),
        per: z.string(),
        measure: z.string(),
        window: z.string(),
        limit: z.number(),
        alarm_at: z.number().nullable(),
        tools: z.array(z.string()).nullable(),
        usage: z.array(z.object({ key: z.string(), used: z.number(), resets_at: Time })),
      }),
    ),
    loop: z.object({
      tripped_tasks_per_hour: z.number().int(),
      principals: z.array(
        z.object({
          principal: z.string(),
          tripped_tasks_this_hour: z.number().int(),
          state: z.enum(['ok', 'tripped']),
          rule: z.string().optional(),
          why: z.string().optional(),
          tripped_at: Time.optional(),
          clears_at: Time.optional(),
        }),
      ),
    }),
  })
  .meta({ id: 'Budgets' });

/** `itguard budgets --json`'s document. */
export async function budgetsView(app: Pick<App, 'policy' | 'store'>, now: number): Promise<z.infer<typeof Budgets>> {
  const usage = await app.store.budgets.usage(app.policy.budgets, now);
  const breakers = await app.store.budgets.breakers(now);
  return {
    budgets: app.policy.budgets.map((r) => ({
      rule: r.name,
      per: r.per,
      measure: r.measure,
      window: r.window,
      limit: r.limit,
      alarm_at: r.alarmAt ?? null,
      tools: r.tools ? [...r.tools] : null,
      usage: usage
        .filter((u) => u.rule === r.name)
        .map((u) => ({ key: u.scopeKey, used: u.used, resets_at: iso(u.resetsAt)! })),
    })),
    loop: {
      tripped_tasks_per_hour: app.policy.loop.trippedTasksPerHour,
      principals: breakers.map((b) => ({
        principal: b.principal,
        tripped_tasks_this_hour: b.trippedTasks,
        state: b.trip ? ('tripped' as const) : ('ok' as const),
        ...(b.trip
          ? { rule: b.trip.rule, why: b.trip.why, tripped_at: iso(b.trip.trippedAt)!, clears_at: iso(b.trip.clearsAt)! }
          : {}),
      })),
    },
  };
}

export const BreakerReset = z
  .object({
    reset: z.array(
      z.object({
        level: z.enum(['principal', 'task']),
        principal: z.string(),
        task: z.string().nullable(),
        was_tripped: z.boolean(),
      }),
    ),
  })
  .meta({ id: 'BreakerReset' });

export const AuditRecord = z
  .object({
    seq: z.number().int(),
    ts: Time,
    event: z.string(),
    trace_id: z.string().nullable(),
    task_id: z.string().nullable(),
    actor: z.string(),
    on_behalf_of: z.string().nullable(),
    session_id: z.string().nullable(),
    tool: z.string().nullable(),
    args: z.unknown(),
    args_sha256: z.string().nullable(),
    outcome: z.string().nullable(),
    code: z.string().nullable(),
    detail: z.unknown(),
    prev_hash: z.string(),
    hash: z.string(),
  })
  .meta({ id: 'AuditRecord' });
export const AuditList = z.object({ records: z.array(AuditRecord) }).meta({ id: 'AuditList' });

const json = (s: string | null): unknown => {
  if (s === null) return null;
  try {
    return JSON.parse(s) as unknown;
  } catch {
    return s;
  }
};
export const auditView = (r: AuditRow): z.infer<typeof AuditRecord> => ({
  seq: r.seq,
  ts: iso(r.ts)!,
  event: r.event,
  trace_id: r.trace_id,
  task_id: r.task_id,
  actor: r.actor,
  on_behalf_of: r.on_behalf_of,
  session_id: r.session_id,
  tool: r.tool,
  args: json(r.args),
  args_sha256: r.args_sha256,
  outcome: r.outcome,
  code: r.code,
  detail: json(r.detail),
  prev_hash: r.prev_hash,
  hash: r.hash,
});

export const AuditVerify = z
  .object({
    ok: z.boolean(),
    count: z.number().int(),
    head: z.object({ seq: z.number().int(), hash: z.string() }).optional(),
    broken_at: z.number().int().optional(),
    reason: z.string().optional(),
  })
  .loose()
  .meta({ id: 'AuditVerify' });

export const Notification = z
  .object({
    id: z.string(),
    request_id: z.string(),
    kind: z.string(),
    channel: z.string(),
    recipient: z.string(),
    status: z.string(),
    attempts: z.number().int(),
    next_try_at: NullableTime,
    last_error: z.string().nullable(),
    ref: z.string().nullable(),
    created_at: Time,
    sent_at: NullableTime,
    updated_at: Time,
  })
  .meta({ id: 'Notification' });
export const NotificationList = z.object({ notifications: z.array(Notification) }).meta({ id: 'NotificationList' });
