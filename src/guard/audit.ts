/**
 * The audit, in two steps of the pipeline:
 *  - `audit` wraps the execution. Write tools: an intent record is committed (group commit, durable under
 *    `durability: strict`) before the side effect starts, and the outcome is recorded after. Read tools have no
 *    side effect and get one record with their outcome. A failure to write the intent refuses the call.
 *  - every call the audit step did not record — a refusal by any step, an unknown tool, a replay, an unexpected
 *    error — gets one record in its settlement (the `units` step, guard/units.ts), so denials are audited too.
 */
import { errorCodeOf } from '../core/errors.js';
import type { GuardDeps } from './deps.js';
import type { AuditEvent } from '../store/ports/index.js';
import type { Guard } from './types.js';
import { baseOf } from './units.js';

export const audit =
  (deps: Pick<GuardDeps, 'audit'>): Guard =>
  (next) =>
    async function auditGuard(call) {
      const base = baseOf(call);
      // Security: the intent is durable before the side effect: committed with the call's admission, or here (a
      // write behind a human gate, a request the executor runs), awaited either way.
      if (call.tool.effect === 'write' && !(await call.state.units?.planned?.intent)) {
        await deps.audit.record({
          ...base,
          event: 'call.intent',
          args: call.args,
          detail: { summary: call.tool.summary(call.args), idempotency_key: call.idempotencyKey },
        });
      }
      call.state.audited = true;
      // The outcome joins the call's settlement. The outcome of an effect that started commits strictly: it is
      // what makes an embedded effect durable before the result is returned.
      const outcome = (event: AuditEvent): Promise<unknown> => {
        const u = call.state.units?.settlement;
        if (call.tool.effect === 'write' && call.state.executedAt !== undefined && u && !u.isCommitted) u.strict = true;
        if (u && !u.isCommitted) return deps.audit.append(u, [event]);
        return deps.audit.record(event, call.tool.effect === 'write' && call.state.executedAt !== undefined);
      };
      let result;
      try {
        result = await next(call);
      } catch (e) {
        const code = (e as { code?: string }).code ?? 'INTERNAL';
        void outcome({
          ...base,
          event: 'call.outcome',
          args: call.args,
          outcome: 'error',
          code,
          detail: { started_at: call.state.executedAt },
        }).catch(() => undefined);
        throw e;
      }
      const code = errorCodeOf(result);
      const written = outcome({
        ...base,
        event: 'call.outcome',
        args: call.args,
        outcome: result.isError ? 'error' : 'ok',
        code,
        detail:
          call.toolPolicy.mode === 'shadow' && call.tool.effect === 'write'
            ? { shadow: true }
            : { started_at: call.state.executedAt },
      });
      // Outside a call's settlement (the executor) the record is written now, and its failure fails the call.
      if (!call.state.units || call.state.units.settlement.isCommitted) await written;
      return result;
    };
