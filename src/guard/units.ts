/**
 * The call's two units of work, owned by the pipeline (DESIGN §5 "A call is two units of work"). The `units` step
 * sits just inside the boundary: it opens both units, lets the steps fill them, and commits the settlement when the
 * call ends — the outcome record or the denial/replay record, the idempotency result, cap releases and the budget
 * settle, all in one unit of the group commit. A call refused before its admission committed (scope, validation,
 * argument policy) is one settlement unit: the admission's operations (the budget's count) move into it, so the
 * refusal still counts — and if that count finds the task tripped or a budget spent, the budget's refusal is the
 * answer, exactly as if the budget had been asked first.
 */
import type { CallToolResult } from '@modelcontextprotocol/server';
import { UnitOfWork, single, type Op } from '../store/unit.js';
import { countRefusal, settleBudget } from './budget.js';
import type { GuardDeps } from './deps.js';
import { GuardError, errorCodeOf } from '../core/errors.js';
import type { Call, Guard } from './types.js';

export const baseOf = (call: Call) => ({
  actor: call.principal.name,
  onBehalfOf: call.principal.onBehalfOf,
  traceId: call.traceId,
  sessionId: call.session?.id,
  taskId: call.task.id,
  tool: call.tool.name,
});

/**
 * A write that belongs to the call's settlement: added to it while the call holds one (it commits when the call
 * ends), committed on its own otherwise (a request the executor runs outside a call).
 */
export function afterCall<T>(deps: Pick<GuardDeps, 'audit'>, call: Call, op: Op<T>): Promise<T> {
  const u = call.state.units?.settlement;
  if (u && !u.isCommitted) return u.add(op);
  return single(deps.audit, op);
}

/** A write of its own, now: one unit of one operation, committed through the runner (group commit). */
export const write = <T>(deps: Pick<GuardDeps, 'audit'>, op: Op<T>): Promise<T> => single(deps.audit, op);

export const units =
  (deps: Pick<GuardDeps, 'audit' | 'log' | 'policy' | 'store' | 'now' | 'metrics'>): Guard =>
  (next) =>
    async function unitsGuard(call) {
      const u = { admission: new UnitOfWork('admission'), settlement: new UnitOfWork('settlement') };
      call.state.units = u;
      let result: CallToolResult | undefined;
      let thrown: { e: unknown } | undefined;
      try {
        result = await next(call);
      } catch (e) {
        thrown = { e };
      }
      // Refused before admission: its operations (the budget's count) are this settlement's first.
      u.admission.moveInto(u.settlement);
      const code = thrown ? (thrown.e instanceof GuardError ? thrown.e.code : 'INTERNAL') : errorCodeOf(result!);
      const settled = settleBudget(deps, call, result, code);
      // The denial, replay or refusal record of every call the audit step did not record; its code is the budget's
      // when the count (run in this unit) refused the call.
      const replay = result?._meta?.['itguard/replay'] as Record<string, unknown> | undefined;
      if (!call.state.audited && (code !== undefined || replay !== undefined)) {
        const args = call.state.validated ? call.args : call.rawArgs;
        void deps.audit.append(u.settlement, () => {
          const refused = countRefusal(call, deps);
          return [
            {
              ...baseOf(call),
              event: replay && !refused ? 'call.replay' : 'call.denied',
              args,
              outcome: replay && !refused ? 'replay' : 'refused',
              code: refused?.code ?? code,
              detail: refused ? undefined : replay,
            },
          ];
        });
      }
      try {
        await deps.audit.commit(u.settlement);
      } catch (e) {
        // The call's records could not be written: a refusal still refuses; a result is not returned without its
        // record (INTERNAL; the idempotency record stays in flight, and a retry asks the backend).
        deps.log.error({ err: e, trace_id: call.traceId }, 'could not write the records of a call after it ran');
        if (!thrown) throw e;
        throw thrown.e;
      }
      await settled.after();
      const refused = countRefusal(call, deps);
      if (refused) throw refused;
      if (thrown) throw thrown.e;
      return result!;
    };
