/**
 * `decide`: the one way a person approves or denies an approval request out of band (DESIGN §4, §6). The console,
 * the CLI, the verification page — and any other channel (the admin API, a Slack action) — call this function with
 * who is deciding; it holds every rule, in one place:
 *
 *  - state: only a pending request is decided (an expired, decided or unknown one is refused), once;
 *  - tier: an `mfa` request is approved only by its target user's code (the `verify` channel); that channel
 *    approves nothing else; approver channels approve `approval` requests only (a `confirm` request is the
 *    asking user's own, in the client). Denying is open to every channel;
 *  - separation of duties, by stable identity, never by a display string: the requesting principal never decides
 *    its own request; the person the request was made for (OAuth `on_behalf_of_id` = issuer + ' sub:' + sub)
 *    never approves it, whatever e-mail their sign-in token carries; nor does the request's target user (by
 *    directory id). E-mail addresses, where compared at all, are compared case-insensitively.
 *
 * The decision and its audit record commit in one transaction; a refused decision is audited too
 * (`approval.refused`, with the reason), so a self-approval attempt leaves a trace beside the log line.
 */
import { andThen, UnitOfWork } from '../store/unit.js';
import type { AuditPort, GuardStore } from '../store/ports/index.js';
import type { ApprovalRow, DecideResult, RefusalReason } from '../store/ports/index.js';

/** The channels a decision arrives through. `verify`: the target user's own code (the verification page). */
export type DecisionChannel = 'console' | 'cli' | 'admin' | 'slack' | 'verify';

/** Who is deciding. Every identity field is optional: a rule applies when both sides of it are known. */
export interface DecisionActor {
  /** As the audit and `decided_by` record it: `console:<principal>`, `cli:<os user>`, `mfa:<user>`, … */
  name: string;
  via: DecisionChannel;
  /** The itguard principal the actor signed in as (console, admin API, a Slack user mapped to a principal). */
  principal?: string | undefined;
  /** The person's stable identity: OAuth issuer + ' sub:' + sub, the same form as a request's `on_behalf_of_id`. */
  personId?: string | undefined;
  /** The person for display (e-mail or sub): recorded as `on_behalf_of` on the decision's audit record. */
  person?: string | undefined;
  /** The person's e-mail address (any claimed one: comparing more can only refuse more). */
  email?: string | undefined;
  /** The person's directory id (username), compared with the request's target user. */
  directoryUser?: string | undefined;
}

export interface DecisionRequest {
  id: string;
  approve: boolean;
  actor: DecisionActor;
  note?: string | undefined;
  /** Facts of the channel, added to the audit record's detail (Slack: the clicking user's id and the action_ts). */
  detail?: Record<string, unknown> | undefined;
}

export type Decision =
  { ok: true; row: ApprovalRow } | { ok: false; reason: RefusalReason; message: string; row?: ApprovalRow | undefined };

export interface DecideDeps {
  /** The approvals port: the table's owner decides, seeing the fresh row. */
  store: Pick<GuardStore, 'approvals'>;
  /** Commits the decision and its audit record as one unit of work. */
  audit: AuditPort;
}

/** One sentence per refusal, for people (console flash, CLI stderr, API error). */
export const REFUSAL_MESSAGES: Record<RefusalReason, string> = {
  self_approval: 'You cannot approve a request made by your own principal',
  own_behalf: 'You cannot approve a request an agent made on your behalf',
  target_user: 'You cannot approve a request that acts on your own account',
  wrong_tier: 'This request cannot be approved here',
  not_pending: 'This request has already been decided (not pending)',
  expired: 'This request has expired',
  not_found: 'No such request',
};

const lower = (s: string | null | undefined): string | undefined => (s ? s.toLowerCase() : undefined);

/** The rule a decision breaks, or undefined. Pure: `row` is the fresh pending row, read in the deciding transaction. */
export function refusalFor(row: ApprovalRow, approve: boolean, a: DecisionActor): RefusalReason | undefined {
  // Security: the requesting principal never decides its own request (neither approves nor buries it).
  if (a.principal !== undefined && a.principal === row.principal) return 'self_approval';
  if (!approve) return undefined;
  // Security: an mfa request is the target user's to confirm with their own factor; an approver may deny it but
  // never stand in for the second factor. The verification channel confirms mfa requests and nothing else.
  if (row.tier === 'mfa' ? a.via !== 'verify' : a.via === 'verify' || row.tier !== 'approval') return 'wrong_tier';
  // The target user's own code is the approval an mfa request asks for.
  if (row.tier === 'mfa') return undefined;
  // Security: the person an agent asked for never approves it — by stable identity, and by e-mail (any case) as a
  // second net for rows made before identities were stored or a person known to two issuers.
  if (a.personId !== undefined && row.on_behalf_of_id !== null && a.personId === row.on_behalf_of_id)
    return 'own_behalf';
  const behalf = lower(row.on_behalf_of);
  if (
    behalf !== undefined &&
    (behalf === lower(a.email) || (row.on_behalf_of_id === null && behalf === lower(a.person)))
  )
    return 'own_behalf';
  // Security: nor the user the action would change (an approval-tier install on their own laptop, say).
  const target = lower(row.target);
  if (target !== undefined && (target === lower(a.directoryUser) || target === lower(a.email))) return 'target_user';
  return undefined;
}

/** Approve or deny request `r.id` as `r.actor`; every outcome, refusals included, is audited with the decision. */
export async function decide(deps: DecideDeps, r: DecisionRequest): Promise<Decision> {
  const { actor, approve } = r;
  // One unit of work: the state change (the approvals table's owner decides, seeing the fresh row) and its record.
  const u = new UnitOfWork('single');
  let d: DecideResult | undefined;
  const decided = u.add((tx) =>
    andThen(
      deps.store.approvals.decide(tx, r.id, approve, actor, r.note, (row) => refusalFor(row, approve, actor)),
      (x) => (d = x),
    ),
  );
  void deps.audit.append(u, () => {
    if (!d) return [];
    const row = d.row;
    return [
      {
        event: d.ok ? (approve ? 'approval.approved' : 'approval.denied') : 'approval.refused',
        actor: actor.name,
        onBehalfOf: actor.person,
        traceId: row?.trace_id,
        tool: row?.tool,
        ...(d.ok ? {} : { outcome: 'refused', code: d.reason }),
        detail: {
          ...r.detail,
          request_id: r.id,
          via: actor.via,
          note: r.note ?? null,
          ...(d.ok ? {} : { decision: approve ? 'approve' : 'deny', reason: d.reason }),
        },
      },
    ];
  });
  await deps.audit.commit(u);
  const out = await decided;
  return out.ok ? out : { ok: false, reason: out.reason, message: REFUSAL_MESSAGES[out.reason], row: out.row };
}
