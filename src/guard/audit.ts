/**
 * The audit, in two steps of the pipeline:
 *  - `audit` wraps the execution. Write tools: an intent record is committed (group commit, durable under
 *    `durability: strict`) before the side effect starts, and the outcome is recorded after. Read tools have no
 *    side effect and get one record with their outcome. A failure to write the intent refuses the call.
 *  - `auditDenials` sits just inside the boundary: every call the audit step did not record — a refusal by any
 *    step, an unknown tool, a replay, an unexpected error — gets one record, so denials are audited too.
 */
import type { CallToolResult } from '@modelcontextprotocol/server';
import { errorCodeOf, GuardError } from '../core/errors.js';
import type { GuardDeps } from './deps.js';
import type { AuditEvent } from '../store/audit-store.js';
import type { Call, Guard } from './types.js';

const baseOf = (call: Call) => ({
  actor: call.principal.name,
  onBehalfOf: call.principal.onBehalfOf,
  traceId: call.traceId,
  sessionId: call.session?.id,
  taskId: call.task.id,
  tool: call.tool.name,
});

export const audit =
  (deps: Pick<GuardDeps, 'audit'>): Guard =>
  (next) =>
    async function auditGuard(call) {
      const base = baseOf(call);
      if (call.tool.effect === 'write') {
        await deps.audit.record({
          ...base,
          event: 'call.intent',
          args: call.args,
          detail: { summary: call.tool.summary(call.args), idempotency_key: call.idempotencyKey },
        });
      }
      call.state.audited = true;
      // The outcome joins the call's tail when the budget step holds one (committed with the call's other writes).
      // The outcome of an effect that started commits strictly: it is what makes an embedded effect durable.
      const outcome = (event: AuditEvent): Promise<void> => {
        const strict = call.tool.effect === 'write' && call.state.executedAt !== undefined;
        const tail = call.state.tail;
        if (!tail) return deps.audit.record(event, strict);
        tail.events.push(event);
        if (strict) tail.strict = true;
        return Promise.resolve();
      };
      let result;
      try {
        result = await next(call);
      } catch (e) {
        const code = (e as { code?: string }).code ?? 'INTERNAL';
        await outcome({
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
      await outcome({
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
      return result;
    };

export const auditDenials =
  (deps: Pick<GuardDeps, 'audit' | 'log'>): Guard =>
  (next) =>
    async function auditDenialsGuard(call) {
      let result: CallToolResult | undefined;
      let code: string | undefined;
      try {
        result = await next(call);
        code = errorCodeOf(result);
        return result;
      } catch (e) {
        code = e instanceof GuardError ? e.code : 'INTERNAL';
        throw e;
      } finally {
        if (!call.state.audited && (code !== undefined || result?._meta?.['itguard/replay'] !== undefined)) {
          const replay = result?._meta?.['itguard/replay'] as Record<string, unknown> | undefined;
          // The refusal stands even if this write fails: it denies either way.
          await deps.audit
            .record({
              ...baseOf(call),
              event: replay ? 'call.replay' : 'call.denied',
              args: call.state.validated ? call.args : call.rawArgs,
              outcome: replay ? 'replay' : 'refused',
              code,
              detail: replay,
            })
            .catch((e: unknown) => deps.log.error({ err: e, trace_id: call.traceId }, 'could not audit a denial'));
        }
      }
    };
