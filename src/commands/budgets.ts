/**
 * `itguard budgets`: each principal budget's usage in its current window, and each principal's loop breaker.
 * `itguard breaker reset PRINCIPAL`: clears a tripped principal breaker (audited with actor cli:<os user>).
 */
import { openStores } from '../app.js';
import { safeText } from '../terminal.js';
import { cliActor, err, iso, out, policyOrExit, printJson, UsageError, type Flags } from './common.js';

function stores(flags: Flags) {
  const { policy } = policyOrExit(flags);
  return { policy, ...openStores(flags.db, policy) };
}

export function budgets(flags: Flags): number {
  const s = stores(flags);
  const now = Date.now();
  const usage = s.budgets.usage(s.policy.budgets, now);
  const breakers = s.budgets.breakers(now);
  s.db.close();
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
    identical_per_hour: s.policy.loop.identicalPerHour,
    failures_in_a_row: s.policy.loop.failuresInARow,
    principals: breakers.map((b) => ({
      principal: b.principal,
      streak: b.streak,
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
  if (!rules.length) out('no principal budgets in the policy (budgets: [])');
  for (const r of rules) {
    out(
      `${r.rule}: ${r.limit} ${r.measure.replace('_', ' ')} per ${r.per} per ${r.window}${r.alarm_at ? `, alarm at ${r.alarm_at}` : ''}${r.tools ? ` (tools: ${r.tools.join(', ')})` : ''}`,
    );
    if (!r.usage.length) out('  no use in this window');
    for (const u of r.usage)
      out(
        `  ${safeText(u.key).padEnd(32)} ${String(u.used).padStart(10)} / ${r.limit}  resets ${u.resets_at}${r.alarm_at !== null && u.used >= r.alarm_at ? '  ALARM' : ''}`,
      );
  }
  out(`loop breaker: identical_per_hour ${loop.identical_per_hour}, failures_in_a_row ${loop.failures_in_a_row}`);
  for (const b of loop.principals) {
    out(
      `  ${safeText(b.principal).padEnd(24)} ${b.state === 'tripped' ? `TRIPPED (${b.rule}: ${safeText(String(b.why))}) until ${b.clears_at}` : `ok, ${b.streak} failure(s) in a row`}`,
    );
  }
  return 0;
}

export function breaker(flags: Flags): number {
  const [verb, principal] = flags.positionals;
  if (verb !== 'reset' || !principal) throw new UsageError('usage: itguard breaker reset PRINCIPAL');
  const s = stores(flags);
  try {
    if (!Object.hasOwn(s.policy.principals, principal)) {
      err(
        `itguard: "${safeText(principal)}" is not a principal in the policy; its principals: ${Object.keys(s.policy.principals).join(', ')}`,
      );
      return 2;
    }
    const before = s.budgets.reset(principal, Date.now());
    s.auditStore.append({
      event: 'breaker.reset',
      actor: cliActor(),
      detail: {
        principal,
        was: before.trip
          ? { rule: before.trip.rule, why: before.trip.why, clears_at: iso(before.trip.clearsAt) }
          : 'ok',
        streak: before.streak,
      },
    });
    if (flags.json) printJson({ principal, was_tripped: !!before.trip, streak: before.streak });
    else
      out(
        before.trip
          ? `breaker for ${principal} reset (was tripped: ${safeText(before.trip.why)})`
          : `breaker for ${principal} was not tripped; failure streak (${before.streak}) and this hour's identical-call counts cleared`,
      );
    return 0;
  } finally {
    s.db.close();
  }
}
