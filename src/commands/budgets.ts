/**
 * `itguard budgets`: each windowed budget's usage (per principal, user and task) in its current window, and each
 * principal's fleet breaker.
 * `itguard tasks [--tripped]`: open tasks (a call within task.idle_minutes) with their usage and breaker.
 * `itguard breaker reset PRINCIPAL | --task ID`: clears a principal's fleet breaker, or a task's own breaker
 * (audited with actor cli:<os user>).
 */
import { connectStores } from '../app.js';
import { resetPrincipalBreaker, resetTaskBreaker } from '../guard/breaker-reset.js';
import type { TaskState } from '../store/ports/index.js';
import { safeText } from '../terminal.js';
import { cliActor, err, iso, out, policyOrExit, printJson, UsageError, type Flags, sqliteFileOf } from './common.js';

async function stores(flags: Flags) {
  const { policy } = policyOrExit(flags);
  return { policy, ...(await connectStores(sqliteFileOf(flags, policy.store), policy)) };
}

export async function budgets(flags: Flags): Promise<number> {
  const s = await stores(flags);
  const now = Date.now();
  const usage = await s.store.budgets.usage(s.policy.budgets, now);
  const breakers = await s.store.budgets.breakers(now);
  await s.close();
  const rules = s.policy.budgets.map((r) => ({
    rule: r.name,
    per: r.per,
    measure: r.measure,
    window: r.window,
    limit: r.limit,
    alarm_at: r.alarmAt ?? null,
    tools: r.tools ?? null,
    usage: usage
      .filter((u) => u.rule === r.name)
      .map((u) => ({ key: u.scopeKey, used: u.used, resets_at: iso(u.resetsAt) })),
  }));
  const loop = {
    tripped_tasks_per_hour: s.policy.loop.trippedTasksPerHour,
    principals: breakers.map((b) => ({
      principal: b.principal,
      tripped_tasks_this_hour: b.trippedTasks,
      state: b.trip ? 'tripped' : 'ok',
      ...(b.trip
        ? { rule: b.trip.rule, why: b.trip.why, tripped_at: iso(b.trip.trippedAt), clears_at: iso(b.trip.clearsAt) }
        : {}),
    })),
  };
  if (flags.json) {
    printJson({ budgets: rules, loop });
    return 0;
  }
  if (!rules.length) out('no windowed budgets in the policy (budgets: [])');
  for (const r of rules) {
    out(
      `${r.rule}: ${r.limit} ${r.measure.replace('_', ' ')} per ${r.per} per ${r.window}${r.alarm_at ? `, alarm at ${r.alarm_at}` : ''}${r.tools ? ` (tools: ${r.tools.join(', ')})` : ''}`,
    );
    if (!r.usage.length) out('  no use in this window');
    for (const u of r.usage)
      out(
        `  ${safeText(u.key).padEnd(40)} ${String(u.used).padStart(10)} / ${r.limit}  resets ${u.resets_at}${r.alarm_at !== null && u.used >= r.alarm_at ? '  ALARM' : ''}`,
      );
  }
  out(`fleet breaker: trips a principal when ${loop.tripped_tasks_per_hour} different tasks tripped within the hour`);
  if (!loop.principals.length) out('  no task tripped this hour');
  for (const b of loop.principals) {
    out(
      `  ${safeText(b.principal).padEnd(24)} ${b.state === 'tripped' ? `TRIPPED (${b.rule}: ${safeText(String(b.why))}) until ${b.clears_at}` : `ok, ${b.tripped_tasks_this_hour} task(s) tripped this hour`}`,
    );
  }
  return 0;
}

const taskJson = (t: TaskState, maxCalls: number) => ({
  task: t.id,
  principal: t.principal,
  identified_by: t.source,
  started_at: iso(t.startedAt),
  last_call_at: iso(t.lastCallAt),
  calls: t.calls,
  calls_left: Math.max(0, maxCalls - t.calls),
  result_bytes: t.resultBytes,
  failures_in_a_row: t.streak,
  state: t.trip ? 'tripped' : 'open',
  ...(t.trip ? { rule: t.trip.rule, why: t.trip.why, tripped_at: iso(t.trip.trippedAt) } : {}),
});

export async function tasks(flags: Flags): Promise<number> {
  const s = await stores(flags);
  const now = Date.now();
  const idleMs = s.policy.task.idleMinutes * 60_000;
  const tripped = flags.values.tripped === true;
  const list = await s.store.budgets.tasks(idleMs, now, { tripped, limit: 1000 });
  const counts = await s.store.budgets.taskCounts(idleMs, now);
  await s.close();
  const rows = list.map((t) => taskJson(t, s.policy.task.maxCalls));
  if (flags.json) {
    printJson({ open: counts.open, tripped: counts.tripped, tasks: rows });
    return 0;
  }
  out(
    `${counts.open} open task(s), ${counts.tripped} tripped (a task ends after ${s.policy.task.idleMinutes} idle minutes)${rows.length < (tripped ? counts.tripped : counts.open) ? `; showing the ${rows.length} most recent` : ''}`,
  );
  for (const t of rows)
    out(
      `  ${safeText(t.task).padEnd(36)} ${safeText(t.principal).padEnd(18)} ${t.identified_by.padEnd(9)} ${String(t.calls).padStart(5)} call(s), ${t.failures_in_a_row} failing, last ${t.last_call_at}${t.state === 'tripped' ? `  TRIPPED (${t.rule}: ${safeText(String(t.why))})` : ''}`,
    );
  return 0;
}

export async function breaker(flags: Flags): Promise<number> {
  const [verb, principal] = flags.positionals;
  const task = flags.values.task;
  if (verb !== 'reset' || (!principal && typeof task !== 'string') || (principal && task !== undefined))
    throw new UsageError('usage: itguard breaker reset PRINCIPAL | itguard breaker reset --task TASK_ID');
  const s = await stores(flags);
  try {
    if (typeof task === 'string') {
      const was = await resetTaskBreaker(s, task, s.policy.task.idleMinutes * 60_000, cliActor(), Date.now());
      if (!was.length) {
        err(`itguard: no open task with id "${safeText(task)}" (see itguard tasks)`);
        if (flags.json) printJson({ task, reset: [], error: 'no open task with this id' });
        return 1;
      }
      if (flags.json)
        printJson({
          task,
          reset: was.map((t) => ({ principal: t.principal, was_tripped: !!t.trip, streak: t.streak })),
        });
      else
        for (const t of was)
          out(
            t.trip
              ? `breaker for task ${task} of ${t.principal} reset (was tripped: ${safeText(t.trip.why)})`
              : `task ${task} of ${t.principal} was not tripped; its failure streak (${t.streak}) and identical-call counts cleared`,
          );
      return 0;
    }
    if (!Object.hasOwn(s.policy.principals, principal!)) {
      err(
        `itguard: "${safeText(principal!)}" is not a principal in the policy; its principals: ${Object.keys(s.policy.principals).join(', ')}`,
      );
      return 2;
    }
    const before = await resetPrincipalBreaker(s, principal!, cliActor(), Date.now());
    if (flags.json) printJson({ principal, was_tripped: !!before.trip, tripped_tasks_this_hour: before.trippedTasks });
    else
      out(
        before.trip
          ? `fleet breaker for ${principal} reset (was tripped: ${safeText(before.trip.why)})`
          : `fleet breaker for ${principal} was not tripped; this hour's count of tripped tasks (${before.trippedTasks}) cleared`,
      );
    return 0;
  } finally {
    await s.close();
  }
}
