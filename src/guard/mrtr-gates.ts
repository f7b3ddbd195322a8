/**
 * The resume step of the human gates over MRTR (2026-07-28 connections whose request declares elicitation;
 * DESIGN §4, §6).
 *
 * Round 1 is the approval step: the tier's gate (gates/in-band.ts) opens the approval request (the single source of
 * truth: it holds the binding hash, the cap reservation and, for mfa, the verification link) and its asker
 * (gates/asker.ts) mints a signed requestState that only points at it and answers `input_required`. Internally
 * that answer is an APPROVAL_PENDING refusal, so the idempotency record is parked on the request and the budgets
 * count it as waiting; the `input_required` itself travels in `call.state.inputRequired` (never in the audit).
 *
 * Round 2 is this step, right after admission: the retry's state is verified (signature, expiry, principal, tool,
 * arguments) and its one-time nonce taken, or the call is refused with APPROVAL_DENIED and nothing runs. The
 * client's answer then goes back into the same tier code as a 2025-11-25 answer does (`inBand` with the
 * `answered` asker): the tier judges it, records the verdict on the request, and an approved request runs exactly
 * once through `waitAndRun` — here, or by the executor if it got there first.
 */
import { write } from './units.js';
import { GuardError } from '../core/errors.js';
import { bindingSha, type Deps } from './gate-requests.js';
import { answered } from './gates/asker.js';
import { inBand } from './gates/in-band.js';
import { promptOfKind } from './gates/prompts.js';
import type { Guard, Handler } from './types.js';

/**
 * The resume step: a 2026-07-28 retry carrying a requestState. Without one, the call goes on as usual (inputResponses
 * alone are ignored: the gate asks again). `afterApproval` runs an approved request (the steps after approval).
 */
export const resume =
  (deps: Deps, afterApproval: () => Handler): Guard =>
  (next) =>
    async function resumeGuard(call) {
      const raw = call.resume?.state;
      if (raw === undefined || !call.client?.mrtr) return next(call);
      const st = await deps.mrtr.verify(raw);
      const row = st && (await deps.store.approvals.get(st.a));
      const prompt = st && promptOfKind(st.k);
      // Security: a state that fails verification, has expired, or belongs to another principal, tool or set of
      // arguments is refused, and nothing runs (DESIGN §6).
      if (!st || !row || !prompt) throw denied('The requestState is not valid (malformed, tampered with or expired)');
      if (
        st.p !== call.principal.name ||
        row.principal !== st.p ||
        st.t !== call.tool.name ||
        row.tool !== st.t ||
        row.args_sha256 !== st.h ||
        bindingSha(call) !== st.h
      )
        throw denied('The requestState belongs to another principal, tool or set of arguments');
      if (!(await write(deps, (tx) => deps.store.approvals.takeStateNonce(tx, row.id, st.n))))
        throw denied('This requestState was already used');
      // The approved path: the request holds the binding, the cap reservation and the backend's request id.
      call.idempotencyKey = row.request_id ?? undefined;
      call.state.requestId = row.idem_key ?? undefined;
      // Read again after the nonce was taken: the answer is judged against the request as it stands now.
      const fresh = (await deps.store.approvals.get(row.id)) ?? row;
      return inBand(deps, call, afterApproval(), prompt, answered(call.resume?.responses), fresh);
    };

const denied = (why: string): GuardError => new GuardError('APPROVAL_DENIED', `${why}; nothing was done.`);
