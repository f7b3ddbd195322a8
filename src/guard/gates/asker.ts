/**
 * The askers: how an in-band question reaches the user behind the calling client — the only part of a human gate
 * that differs between the protocol eras (DESIGN §4, §6). Each tier's rules are written once (gates/in-band.ts,
 * gates/prompts.ts); an asker only carries the question and brings back the answer.
 *
 *  - push (2025-11-25): `elicitation/create` sent on the session, tied to the call and awaited in it (at most
 *    `approvals.wait_seconds`). No answer in time, a transport error or an aborted call is `cancel`: fail closed.
 *  - mrtr (2026-07-28): the protocol has no server-to-client requests. The asker takes a new one-time nonce on the
 *    request, mints a signed requestState pointing at it and answers `input_required` (thrown as APPROVAL_PENDING,
 *    so the idempotency record parks on the request). The client retries with its answer; the resume step
 *    (mrtr-gates.ts) verifies the state and hands the answer back through `answered`, into the same tier code.
 */
import { inputRequired, inputResponse, type InputResponses } from '@modelcontextprotocol/server';
import type { ApprovalRow } from '../../store/ports/index.js';
import type { GuardError } from '../../core/errors.js';
import { abortError, pending, type Deps } from '../gate-requests.js';
import { write } from '../units.js';
import type { Call } from '../types.js';
import type { Asker, InBandGate } from './types.js';

export type { Answer, Asker, FormSchema, Prompt } from './types.js';

/** 2025-11-25: elicitation pushed on the session, answered within the call. */
export const pushAsker: Asker = {
  via: 'elicitation',
  async ask(deps, call, row, gate) {
    const p = await gate.prompt(deps, row);
    const params =
      p.mode === 'url'
        ? { mode: 'url' as const, message: p.message, url: p.url, elicitationId: row.id }
        : { mode: 'form' as const, message: p.message, requestedSchema: p.requestedSchema };
    try {
      const r = await call.client!.elicit(params, call.signal, deps.policy.approvals.waitSeconds * 1000);
      return { action: r.action, content: r.content as Record<string, unknown> | undefined };
    } catch {
      // Security: a timeout, a transport error or an aborted call is "not confirmed", never consent.
      return { action: 'cancel', abort: call.signal.aborted ? abortError(call) : undefined };
    }
  },
};

/** 2026-07-28, first round (and any round without an answer): `input_required` for the request. */
export const mrtrAsker: Asker = {
  via: 'input_required',
  async ask(deps, call, row, gate) {
    throw await inputRound(deps, call, row, gate);
  },
};

/** 2026-07-28, a retry whose state was verified: the client's answer to `gate`'s prompt, or a new round. */
export const answered = (responses: InputResponses | undefined): Asker => ({
  via: 'input_required',
  async ask(deps, call, row, gate) {
    const a = inputResponse(responses, gate.key);
    if (a.kind === 'missing') return mrtrAsker.ask(deps, call, row, gate); // no answer: ask again
    if (a.kind !== 'elicit') return { action: 'cancel' };
    return { action: a.action, content: a.content };
  },
});

/** How this call can ask in band, if at all: the asker and the modes it offers. */
export interface Channel {
  asker: Asker;
  form: boolean;
  url: boolean;
}

export function channelOf(call: Call): Channel | undefined {
  const c = call.client;
  if (c?.form || c?.url) return { asker: pushAsker, form: c.form, url: c.url };
  if (c?.mrtr && (c.mrtr.form || c.mrtr.url)) return { asker: mrtrAsker, form: c.mrtr.form, url: c.mrtr.url };
  return undefined;
}

/**
 * Mints this round's state (a new nonce: any older state of the request stops working) and the prompt, kept in
 * `call.state.inputRequired` (never in the audit); returns the APPROVAL_PENDING refusal that stands for it.
 */
export async function inputRound(deps: Deps, call: Call, row: ApprovalRow, gate: InBandGate): Promise<GuardError> {
  const nonce = await write(deps, (tx) => deps.store.approvals.newStateNonce(tx, row.id));
  const requestState = await deps.mrtr.mint({
    a: row.id,
    p: call.principal.name,
    t: call.tool.name,
    h: row.args_sha256,
    n: nonce,
    k: gate.kind,
  });
  const p = await gate.prompt(deps, row);
  const request =
    p.mode === 'url'
      ? inputRequired.elicitUrl({ message: p.message, url: p.url })
      : inputRequired.elicit({ message: p.message, requestedSchema: p.requestedSchema });
  call.state.inputRequired = { inputRequests: { [gate.key]: request }, requestState };
  const who = gate.tier === 'confirm' ? 'the user’s confirmation' : `${row.target ?? 'the user'}'s authenticator code`;
  return pending(
    row,
    `Request ${row.id} needs ${who} (${row.summary}); answer the prompt and retry, or check with request_status.`,
    { input_required: gate.kind },
  );
}
