/**
 * The human gates over MRTR (2026-07-28 connections whose request declares elicitation; DESIGN §4).
 *
 * Round 1 (the approval step): the gate opens an approval request (the single source of truth: it holds the
 * binding hash, the cap reservation and, for mfa, the verification link), mints a signed requestState that only
 * points at it, and answers `input_required`. Internally that answer is an APPROVAL_PENDING refusal, so the
 * idempotency record is parked on the request and the budgets count it as waiting; the `input_required` itself
 * travels in `call.state.inputRequired` (never in the audit).
 *
 * Round 2 (the resume step, right after validation): the retry's state is verified (signature, expiry,
 * principal, tool, arguments) and its one-time nonce taken, or the call is refused with APPROVAL_DENIED and
 * nothing runs. The client's answer then decides the request: an explicit accept (confirm: approve true; mfa form:
 * the target's code, checked by the factors port) approves it; decline, cancel or a wrong code deny it. The
 * approved request runs exactly once through `waitAndRun` — here, or by the executor if it got there first.
 * Every tier keeps its out-of-band path: the console approves a pending confirm, the page takes the mfa code.
 */
import { write } from './units.js';
import { UnitOfWork } from '../store/unit.js';
import { inputRequired, inputResponse, type InputResponses } from '@modelcontextprotocol/server';
import type { ApprovalRow } from '../store/ports/index.js';
import { raiseAlarm } from './alarm.js';
import { GuardError } from '../core/errors.js';
import { auditGate, bindingSha, openOrCreate, pending, waitAndRun, type Deps } from './gate-requests.js';
import type { StatePayload } from './mrtr.js';
import type { Call, Guard, Handler } from './types.js';

export type MrtrKind = 'confirm' | 'mfa-form' | 'mfa-url';

const CONFIRM_SCHEMA = (summary: string) => ({
  type: 'object' as const,
  properties: { approve: { type: 'boolean' as const, title: 'Approve this action?', description: summary } },
  required: ['approve'],
});

/** The gate's first round: the approval request, then `input_required` for it (thrown as APPROVAL_PENDING). */
export async function askByMrtr(deps: Deps, call: Call, kind: MrtrKind): Promise<never> {
  if (kind === 'mfa-url') await deps.links.ready;
  const tier = kind === 'confirm' ? 'confirm' : 'mfa';
  const { row } = await openOrCreate(deps, call, tier, kind !== 'confirm');
  await auditGate(deps, call, 'approval.requested', {
    request_id: row.id,
    tier,
    ...(row.target ? { target: row.target } : {}),
    channel: `mrtr-${kind}`,
  });
  throw await inputRound(deps, call, row, kind);
}

/** Mints this round's state (a new nonce: any older state of the request stops working) and the prompt. */
export async function inputRound(deps: Deps, call: Call, row: ApprovalRow, kind: MrtrKind): Promise<GuardError> {
  const nonce = await write(deps, (tx) => deps.store.approvals.newStateNonce(tx, row.id));
  const requestState = await deps.mrtr.mint({
    a: row.id,
    p: call.principal.name,
    t: call.tool.name,
    h: row.args_sha256,
    n: nonce,
    k: kind,
  });
  const target = row.target ?? 'the user';
  let prompt;
  if (kind === 'confirm') {
    prompt = {
      confirm: inputRequired.elicit({
        message: `Please confirm: ${row.summary}\nReason given by the agent: ${row.reason}`,
        requestedSchema: CONFIRM_SCHEMA(row.summary),
      }),
    };
  } else if (kind === 'mfa-form') {
    prompt = {
      code: inputRequired.elicit({
        message: `${target} must confirm this with their authenticator app: ${row.summary}.\nReason: ${row.reason}\nAsk ${target} to type the current 6-digit code.`,
        requestedSchema: {
          type: 'object',
          properties: { code: { type: 'string', title: `${target}'s 6-digit code`, minLength: 6, maxLength: 6 } },
          required: ['code'],
        },
      }),
    };
  } else {
    // Only the link's hash is kept: each round that shows the page issues a fresh link.
    const token = await write(deps, (tx) => deps.store.approvals.rotateVerifyLink(tx, row.id));
    const url = `${deps.links.base}/verify/${token}`;
    prompt = {
      page: inputRequired.elicitUrl({
        message: `${target} must confirm "${row.summary}" by entering the code from their authenticator app on this page.`,
        url,
      }),
    };
  }
  call.state.inputRequired = { inputRequests: prompt, requestState };
  return pending(
    row,
    `Request ${row.id} needs ${kind === 'confirm' ? 'the user’s confirmation' : `${target}'s authenticator code`} (${row.summary}); answer the prompt and retry, or check with request_status.`,
    { input_required: kind },
  );
}

/** The kind of prompt this client can answer for a pending request, if any. */
export function mrtrKindFor(deps: Deps, call: Call, row: ApprovalRow): MrtrKind | undefined {
  const m = call.client?.mrtr;
  if (!m || row.status !== 'pending') return undefined;
  if (row.tier === 'confirm') return m.form ? 'confirm' : undefined;
  if (row.tier === 'mfa' && deps.backends.factors.push) return undefined; // the phone answers, not the client
  if (row.tier === 'mfa') return m.url ? 'mfa-url' : m.form && deps.policy.mfa.allowFormCode ? 'mfa-form' : undefined;
  return undefined;
}

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
      // Security: a state that fails verification, has expired, or belongs to another principal, tool or set of
      // arguments is refused, and nothing runs (DESIGN §6).
      if (!st || !row) throw denied('The requestState is not valid (malformed, tampered with or expired)');
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
      return decideAndRun(deps, call, row, st, call.resume?.responses, afterApproval());
    };

const denied = (why: string): GuardError => new GuardError('APPROVAL_DENIED', `${why}; nothing was done.`);

async function decideAndRun(
  deps: Deps,
  call: Call,
  row: ApprovalRow,
  st: StatePayload,
  responses: InputResponses | undefined,
  run: Handler,
): Promise<Awaited<ReturnType<Handler>>> {
  const kind = st.k as MrtrKind;
  const key = kind === 'confirm' ? 'confirm' : kind === 'mfa-form' ? 'code' : 'page';
  const answer = inputResponse(responses, key);
  if (row.status === 'pending') {
    if (answer.kind === 'missing') throw await inputRound(deps, call, row, kind); // no answer: ask again
    const action = answer.kind === 'elicit' ? answer.action : 'cancel';
    const content = (answer.kind === 'elicit' ? answer.content : undefined) as Record<string, unknown> | undefined;
    const deny = async (event: string, detail: Record<string, unknown>, message: string): Promise<never> => {
      // A decline is not replayed to a retry: the request is over, and the next call is a new one that asks again —
      // as on 2025-11-25, where the declined call's keys are freed with its refusal (DESIGN §4). One unit: both.
      const u = new UnitOfWork('single');
      const by = { name: kind === 'confirm' ? 'client-user' : `mfa:${row.target}` };
      void u.add((tx) => deps.store.approvals.decide(tx, row.id, false, by, message));
      const idemKey = row.idem_key;
      if (idemKey !== null) void u.add((tx) => deps.store.idem.unpark(tx, row.principal, idemKey, row.id));
      await deps.audit.commit(u);
      await auditGate(deps, call, event, { request_id: row.id, channel: `mrtr-${kind}`, ...detail });
      throw new GuardError('APPROVAL_DENIED', message, { details: { request_id: row.id } });
    };
    if (kind === 'confirm') {
      // Security: only an explicit accept with approve = true proceeds; decline and cancel are "not confirmed".
      if (action !== 'accept' || content?.approve !== true)
        await deny(
          'approval.declined',
          { tier: 'confirm', action },
          `The user did not confirm "${row.summary}" (${action === 'accept' ? 'not approved' : action}).`,
        );
      await write(deps, (tx) =>
        deps.store.approvals.decide(
          tx,
          row.id,
          true,
          { name: 'client-user' },
          'confirmed in the client (input_required)',
        ),
      );
      await auditGate(deps, call, 'approval.confirmed', { tier: 'confirm', request_id: row.id, channel: 'mrtr' });
    } else if (kind === 'mfa-form') {
      const target = row.target!;
      const code = action === 'accept' && typeof content?.code === 'string' ? content.code.trim() : undefined;
      if (code === undefined) await deny('mfa.declined', { target, action }, `${target} did not confirm (${action}).`);
      const v = await deps.backends.factors.verify(target, code!, { signal: call.signal });
      if (!v.ok) {
        if (v.justLocked)
          await raiseAlarm(deps, call, {
            kind: 'MFA_LOCKED',
            rule: 'mfa-failures',
            message: `${target}'s authenticator locked after 5 wrong codes`,
            detail: { target },
          });
        await deny('mfa.failed', { target, why: v.why }, `The code for ${target} was not accepted (${v.why}).`);
      }
      await write(deps, (tx) =>
        deps.store.approvals.decide(
          tx,
          row.id,
          true,
          { name: `mfa:${target}` },
          'confirmed by the target user with their code',
        ),
      );
      await auditGate(deps, call, 'mfa.verified', { target, channel: 'mrtr-form', request_id: row.id });
    } else if (action !== 'accept') {
      await deny(
        'mfa.declined',
        { target: row.target, action },
        `The confirmation page was ${action === 'decline' ? 'declined' : 'cancelled'}; nothing was done.`,
      );
    }
    // mfa-url accepted: the page decides; wait for it below.
  }
  return waitAndRun(deps, call, run, row.id, `waiting on request ${row.id}`);
}
