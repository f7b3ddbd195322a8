/** The shapes the in-band gates share (gates/in-band.ts, gates/prompts.ts, gates/asker.ts). */
import type { ElicitRequestFormParams } from '@modelcontextprotocol/server';
import type { GuardError } from '../../core/errors.js';
import type { ApprovalRow } from '../../store/ports/index.js';
import type { Deps } from '../gate-requests.js';
import type { Call } from '../types.js';

/** A question, whichever way it travels. */
export type Prompt =
  { mode: 'form'; message: string; requestedSchema: FormSchema } | { mode: 'url'; message: string; url: string };

export type FormSchema = ElicitRequestFormParams['requestedSchema'];

/** The client's answer. `abort`: the call itself was cancelled while it asked (the refusal to return). */
export interface Answer {
  action: 'accept' | 'decline' | 'cancel';
  content?: Record<string, unknown> | undefined;
  abort?: GuardError | undefined;
}

export interface Asker {
  /** How the question travelled, as the audit records it. */
  via: 'elicitation' | 'input_required';
  /** Asks `gate`'s question about `row`: the answer (push, resume), or throws the `input_required` round (mrtr). */
  ask(deps: Deps, call: Call, row: ApprovalRow, gate: InBandGate): Promise<Answer>;
}

/** The prompt kinds; also the MRTR state's `k`. */
export type PromptKind = 'confirm' | 'mfa-form' | 'mfa-url';

/** What the tier makes of an answer. `undefined`: nothing to record here (the verification page decides). */
export interface Verdict {
  approve: boolean;
  /** `decided_by` on the request. */
  by: string;
  /** The audit event: approval.confirmed | approval.declined | mfa.verified | mfa.declined | mfa.failed. */
  event: string;
  detail: Record<string, unknown>;
  /** A denial's sentence to the agent (also the request's note); an approval's note. */
  message: string;
}

export interface InBandGate {
  kind: PromptKind;
  tier: 'confirm' | 'mfa';
  /** The `inputRequests` key its question travels under on 2026-07-28. */
  key: string;
  /** How the human answers, as the audit records it. */
  channel: 'form' | 'url';
  /** The question about `row` (a URL prompt issues a fresh one-time page link each time it is asked). */
  prompt(deps: Deps, row: ApprovalRow): Promise<Prompt>;
  /** The tier's rule: what this answer does to the request. */
  judge(deps: Deps, call: Call, row: ApprovalRow, a: Answer): Promise<Verdict | undefined>;
  /** The progress message while the call waits on the request. */
  waiting(row: ApprovalRow): string;
}
