/**
 * The admission step (DESIGN §5 "A call is two units of work"): once a call is known to be valid, everything it
 * must hold before its side effect is decided in ONE transaction — the budget's admit (added by the budget step),
 * the idempotency begin, every cap reservation and, for a write that no human gate stands before, its audit intent.
 * The operations run in that order inside the unit and each runs only if the ones before it let the call through,
 * so a refused admit begins nothing and a refused cap writes no intent. The steps after this one (idempotency,
 * caps, approval, audit) read what was decided here instead of asking the store again; paths the plan cannot
 * foresee (a request recovered after a crash, a request resumed over MRTR, a write behind a human gate) make their
 * own writes as they did.
 */
import { admitted } from './budget.js';
import { capDemands, capHold } from './caps.js';
import type { GuardDeps } from './deps.js';
import { beginInput } from './idempotency.js';
import type { Call, Guard } from './types.js';
import { baseOf } from './units.js';
import type { BeginResult, ReserveResult } from '../store/ports/index.js';
import { andThen } from '../store/unit.js';

const tierOf = (call: Call) => call.state.resolved.tier ?? call.toolPolicy.tier ?? call.tool.tier;

export const admission =
  (deps: Pick<GuardDeps, 'policy' | 'log' | 'audit' | 'metrics' | 'store' | 'now'>): Guard =>
  (next) =>
    async function admissionGuard(call) {
      const units = call.state.units;
      if (!units) return next(call);
      const u = units.admission;
      const admitOk = () => units.admit === undefined || units.admit.result?.ok === true;
      // A 2026-07-28 retry that answers a prompt continues a request whose records exist: only its count is admitted.
      if (call.resume?.state === undefined) {
        const write = call.tool.effect === 'write';
        let begun: BeginResult | undefined;
        let reserved: ReserveResult | undefined;
        const planned: NonNullable<typeof units.planned> = {};
        if (write) {
          const { input } = beginInput(deps, call);
          planned.begin = u.add((tx) =>
            admitOk() ? andThen(deps.store.idem.begin(tx, input), (b) => (begun = b)) : undefined,
          );
        }
        const demands = capDemands(call);
        if (demands.length) {
          const now = deps.now();
          planned.reserve = u.add((tx) => {
            if (!admitOk() || (write && begun?.kind !== 'new')) return undefined;
            const hold = write && begun?.kind === 'new' ? capHold(call, begun.requestId) : undefined;
            return andThen(deps.store.caps.reserve(tx, demands, now, hold), (r) => (reserved = r));
          });
        }
        if (write && (tierOf(call) === 'auto' || call.toolPolicy.mode === 'shadow')) {
          u.strict = true; // Security: the intent is on disk before the side effect starts (durability: strict)
          planned.intent = deps.audit
            .append(u, () =>
              admitOk() && begun?.kind === 'new' && (!demands.length || reserved?.ok)
                ? [
                    {
                      ...baseOf(call),
                      event: 'call.intent',
                      args: call.args,
                      detail: { summary: call.tool.summary(call.args), idempotency_key: begun.requestId },
                    },
                  ]
                : [],
            )
            .then((seqs) => seqs.length > 0);
        }
        units.planned = planned;
      }
      try {
        await deps.audit.commit(u);
      } catch (e) {
        // Security: nothing of the admission was written; the call is refused (fail closed) and is not counted twice.
        if (units.admit?.unit === u) units.admit.result = undefined;
        throw e;
      }
      await admitted(deps, call);
      return next(call);
    };
