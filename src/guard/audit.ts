/**
 * Step 9 (wrapping the execution). Write tools: an intent record is committed (group commit, durable under
 * `durability: strict`) before the side effect starts, and the outcome is recorded after. Read tools have no
 * side effect and get one record with their outcome. A failure to write the intent refuses the call.
 */
import { errorCodeOf } from './errors.js';
import type { GuardDeps } from './deps.js';
import type { Call, Guard } from './types.js';

/** Calls whose outcome this guard recorded; the boundary records denials of all others. */
export const audited = new WeakSet<Call>();

export const audit =
  (deps: Pick<GuardDeps, 'audit'>): Guard =>
  (next) =>
    async function auditGuard(call) {
      const base = {
        actor: call.principal.name,
        traceId: call.traceId,
        sessionId: call.session.id,
        tool: call.tool.name,
      };
      if (call.tool.effect === 'write') {
        await deps.audit.record({ ...base, event: 'call.intent', args: call.args, detail: { summary: call.tool.summary(call.args), idempotency_key: call.idempotencyKey } });
      }
      audited.add(call);
      let result;
      try {
        result = await next(call);
      } catch (e) {
        const code = (e as { code?: string }).code ?? 'INTERNAL';
        await deps.audit
          .record({ ...base, event: 'call.outcome', args: call.args, outcome: 'error', code, detail: { started_at: call.executedAt } })
          .catch(() => undefined);
        throw e;
      }
      const code = errorCodeOf(result);
      await deps.audit.record({
        ...base,
        event: 'call.outcome',
        args: call.args,
        outcome: result.isError ? 'error' : 'ok',
        code,
        detail: call.toolPolicy.mode === 'shadow' && call.tool.effect === 'write' ? { shadow: true } : { started_at: call.executedAt },
      });
      return result;
    };
