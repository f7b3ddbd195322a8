/**
 * Step 4. Session budgets (calls, minutes, result bytes) and the loop breaker (identical calls, consecutive
 * failures). Both are per MCP session and in memory: reconnecting resets them, which is why the aggregate caps
 * that must survive reconnects live in the database instead.
 */
import { canonicalJson } from '../canonical.js';
import { raiseAlarm } from './alarm.js';
import type { GuardDeps } from './deps.js';
import { GuardError } from './errors.js';
import type { Call, Guard } from './types.js';

export function resultBytes(r: { content?: unknown; structuredContent?: unknown }): number {
  return Buffer.byteLength(JSON.stringify([r.content ?? null, r.structuredContent ?? null]));
}

async function trip(deps: Pick<GuardDeps, 'log' | 'audit' | 'metrics'>, call: Call, why: string, rule: string): Promise<never> {
  call.session.tripped = why;
  await raiseAlarm(deps, call, { kind: 'LOOP_DETECTED', rule, message: `loop breaker tripped for session ${call.session.id}: ${why}` });
  throw new GuardError('LOOP_DETECTED', `The loop breaker stopped this session: ${why}.`, { details: { rule } });
}

export const sessionBudget =
  (deps: Pick<GuardDeps, 'policy' | 'log' | 'audit' | 'metrics' | 'now'>): Guard =>
  (next) =>
    async function budgetGuard(call) {
      const s = call.session;
      const b = deps.policy.session;
      // Security: a tripped breaker is final for the session.
      if (s.tripped) throw new GuardError('LOOP_DETECTED', `This session was stopped by the loop breaker: ${s.tripped}.`);
      const exhausted = (what: string, limit: string) =>
        new GuardError('BUDGET_EXHAUSTED', `This session has used its ${what} (${limit}).`, { details: { budget: what, limit } });
      if (s.calls >= b.maxCalls) throw exhausted('calls', `max_calls ${b.maxCalls}`);
      if (deps.now() - s.startedAt >= b.maxMinutes * 60_000) throw exhausted('time', `max_minutes ${b.maxMinutes}`);
      if (s.resultBytes >= b.maxResultBytes) throw exhausted('result bytes', `max_result_bytes ${b.maxResultBytes}`);

      // Security: failures counted by the boundary include refusals by earlier guards.
      // "More than max_consecutive_failures in a row" (DESIGN §3): the call after the (N+1)th failure is refused.
      if (s.consecutiveFailures > call.toolPolicy.maxConsecutiveFailures) {
        await trip(deps, call, `${s.consecutiveFailures} failed calls in a row`, 'max_consecutive_failures');
      }
      const sig = `${call.tool.name} ${canonicalJson(call.args)}`;
      const seen = (s.identical.get(sig) ?? 0) + 1;
      s.identical.set(sig, seen);
      if (seen > call.toolPolicy.maxIdenticalCalls) {
        await trip(deps, call, `${call.tool.name} called ${seen} times with the same arguments`, 'max_identical_calls');
      }

      s.calls += 1;
      const result = await next(call);
      s.resultBytes += resultBytes(result);
      return result;
    };
