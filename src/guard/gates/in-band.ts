/**
 * One in-band human gate, written once for both protocol eras (DESIGN §4). A tier's prompt (gates/prompts.ts) says
 * what it asks and what an answer does; `inBand` is the rest, the same for every tier and every asker:
 *
 *  1. the approval request: opened (or the open one for the same binding joined) and audited as
 *     `approval.requested` — every gate has one, the single source of truth;
 *  2. while it is pending, the question goes out through the asker (gates/asker.ts: pushed and awaited on
 *     2025-11-25; `input_required` on 2026-07-28, whose retry comes back here through the resume step);
 *  3. the tier judges the answer. A verdict is recorded on the request together with its audit record, in one unit:
 *     an approval, or a denial (which also frees a retry's parked idempotency records: a denial is not replayed,
 *     and the next call is a new request that asks again). Only an explicit accept can approve; decline, cancel, a
 *     timeout, an error or an aborted call deny. A denial refuses the call with APPROVAL_DENIED;
 *  4. the request runs exactly once through `waitAndRun` (here, or by the executor if it claimed it first). A
 *     request decided elsewhere meanwhile (the verification page, an approver's denial, expiry) is reported as it
 *     stands.
 */
import type { CallToolResult } from '@modelcontextprotocol/server';
import { GuardError } from '../../core/errors.js';
import type { ApprovalRow } from '../../store/ports/index.js';
import { UnitOfWork } from '../../store/unit.js';
import { auditGate, openOrCreate, waitAndRun, type Deps } from '../gate-requests.js';
import type { Call, Handler } from '../types.js';
import { baseOf } from '../units.js';
import type { Asker, InBandGate, Verdict } from './types.js';

export type { InBandGate, PromptKind, Verdict } from './types.js';

/**
 * The gate: `row` is the request a verified 2026-07-28 retry points at; without one the request is opened.
 * `run` runs the approved request (the rest of the caller's pipeline).
 */
export async function inBand(
  deps: Deps,
  call: Call,
  run: Handler,
  gate: InBandGate,
  asker: Asker,
  known?: ApprovalRow,
): Promise<CallToolResult> {
  const row = known ?? (await open(deps, call, gate, asker));
  if (row.status === 'pending') {
    const answer = await asker.ask(deps, call, row, gate);
    const v = await gate.judge(deps, call, row, answer);
    if (v) {
      const recorded = await record(deps, call, row, gate, asker, v);
      // A denial this answer made refuses the call. One that came too late (decided elsewhere meanwhile) does not
      // change the request: the call reports the request as it stands — unless the call itself was cancelled.
      if (!v.approve && (recorded || answer.abort))
        throw answer.abort ?? new GuardError('APPROVAL_DENIED', v.message, { details: { request_id: row.id } });
    }
  }
  return waitAndRun(deps, call, run, row.id, gate.waiting(row));
}

async function open(deps: Deps, call: Call, gate: InBandGate, asker: Asker): Promise<ApprovalRow> {
  // An mfa request carries a verification link: the page stays the target user's out-of-band path.
  const { row } = await openOrCreate(deps, call, gate.tier, gate.tier === 'mfa');
  await auditGate(deps, call, 'approval.requested', {
    request_id: row.id,
    tier: gate.tier,
    ...(row.target ? { target: row.target } : {}),
    channel: gate.channel,
    via: asker.via,
  });
  return row;
}

/** The verdict on the request and its audit record, in one unit. True when this verdict decided the request. */
async function record(
  deps: Deps,
  call: Call,
  row: ApprovalRow,
  gate: InBandGate,
  asker: Asker,
  v: Verdict,
): Promise<boolean> {
  const u = new UnitOfWork('single');
  const decided = u.add((tx) => deps.store.approvals.decide(tx, row.id, v.approve, { name: v.by }, v.message));
  const idemKey = row.idem_key;
  // A denial is not replayed to a retry: the records parked on the request (2026-07-28) go with it.
  if (!v.approve && idemKey !== null) void u.add((tx) => deps.store.idem.unpark(tx, row.principal, idemKey, row.id));
  void deps.audit.append(u, [
    {
      ...baseOf(call),
      event: v.event,
      detail: {
        request_id: row.id,
        tier: gate.tier,
        ...(row.target ? { target: row.target } : {}),
        channel: gate.channel,
        via: asker.via,
        ...v.detail,
      },
    },
  ]);
  await deps.audit.commit(u);
  return (await decided).ok;
}
