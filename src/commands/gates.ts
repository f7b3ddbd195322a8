/** `itguard approvals list|approve ID|deny ID`, `directory enroll USER`, `outbox`: human gates from the shell. */
import { connectStores } from '../app.js';
import { decide } from '../guard/decide.js';
import type { ApprovalRow, RefusalReason } from '../store/ports/index.js';
import { safeText } from '../terminal.js';
import {
  cliActor,
  err,
  iso,
  out,
  policyOrExit,
  printJson,
  UsageError,
  type FailCode,
  type Flags,
  sqliteFileOf,
} from './common.js';

async function stores(flags: Flags) {
  const { policy } = policyOrExit(flags);
  return { policy, ...(await connectStores(sqliteFileOf(flags, policy.store), policy)) };
}

/** A refused decision's `--json` error code (README "CLI reference"). */
const REFUSAL_CODES: Record<RefusalReason, FailCode> = {
  not_found: 'NOT_FOUND',
  not_pending: 'CONFLICT',
  expired: 'CONFLICT',
  self_approval: 'REFUSED',
  own_behalf: 'REFUSED',
  target_user: 'REFUSED',
  wrong_tier: 'REFUSED',
};

const view = (r: ApprovalRow) => ({
  id: r.id,
  status: r.status,
  tier: r.tier,
  requested_by: r.principal,
  tool: r.tool,
  target: r.target,
  summary: r.summary,
  reason: r.reason,
  caps: JSON.parse(r.caps) as unknown[],
  created_at: iso(r.created_at),
  expires_at: iso(r.expires_at),
  decided_by: r.decided_by,
  note: r.note,
});

export async function approvals(flags: Flags): Promise<number> {
  const [verb, id] = flags.positionals;
  const s = await stores(flags);
  try {
    if (verb === 'list' || verb === undefined) {
      const rows = await s.store.approvals.list(
        flags.values.all
          ? ['pending', 'approved', 'executing', 'succeeded', 'failed', 'denied', 'expired']
          : ['pending'],
      );
      if (flags.json) printJson(rows.map(view));
      else if (!rows.length) out('no pending requests');
      else
        for (const r of rows) {
          // Security: summary and reason are agent text; escaped so they cannot drive the terminal or fake a row.
          out(
            `${safeText(r.id)}  ${safeText(r.status).padEnd(9)} ${safeText(r.tier).padEnd(8)} by ${safeText(r.principal)}: ${safeText(r.summary)}`,
          );
          out(
            `    reason: ${safeText(r.reason)}   expires ${iso(r.expires_at)}${r.decided_by ? `   decided by ${safeText(r.decided_by)}` : ''}`,
          );
        }
      return 0;
    }
    if (verb === 'approve' || verb === 'deny') {
      if (!id) throw new UsageError(`approvals ${verb} ID [--note TEXT]`);
      // Security: the CLI decides as the OS user (cli:<user>) and never in a principal's name, so a --principal (the
      // requesting agent's, say) is refused rather than silently ignored.
      if (flags.values.principal !== undefined)
        throw new UsageError(`approvals ${verb} decides as the OS user (${cliActor()}); --principal does not apply`);
      const note = typeof flags.values.note === 'string' ? flags.values.note : undefined;
      // Every rule (state, tier, separation of duties) and the audit of the outcome: src/guard/decide.ts.
      const d = await decide(s, { id, approve: verb === 'approve', note, actor: { name: cliActor(), via: 'cli' } });
      if (!d.ok) {
        const message =
          d.reason === 'wrong_tier' && d.row?.tier === 'mfa'
            ? `${id} needs ${d.row.target}'s own authenticator code on the verification page; it cannot be approved here.`
            : `cannot ${verb} ${id}: ${d.message}.`;
        // --json: the same document as success, `ok: false` with the refusal's code and reason (DESIGN §7).
        if (flags.json)
          printJson({
            ok: false,
            error: { code: REFUSAL_CODES[d.reason], reason: d.reason, message },
            request: d.row ? view(d.row) : null,
          });
        err(message);
        return 1;
      }
      if (flags.json) printJson({ ok: true, request: view(d.row) });
      else
        out(
          `${id} ${verb === 'approve' ? 'approved' : 'denied'}${verb === 'approve' ? ' — a running itguard server executes it within seconds' : ''}`,
        );
      return 0;
    }
    throw new UsageError('approvals list [--all] | approve ID [--note T] | deny ID [--note T]');
  } finally {
    await s.close();
  }
}

export async function enroll(flags: Flags): Promise<number> {
  const user = flags.positionals[1];
  if (!user) throw new UsageError('directory enroll USER');
  const s = await stores(flags);
  try {
    // The configured directory (embedded or LDAP) says who exists; the factor is kept in itguard's own store.
    let u;
    try {
      u = await s.backends.directory.get(user, { signal: AbortSignal.timeout(15_000) });
    } catch (e) {
      err(`cannot look ${user} up in the directory: ${(e as Error).message}`);
      return 1;
    }
    if (!u || u.username !== user) {
      err(`no user ${user} in the directory`);
      return 1;
    }
    const uri = await s.backends.factors.enroll(user);
    await s.audit.record({ event: 'mfa.enrolled', actor: cliActor(), detail: { user } }, true);
    out(uri);
    err(
      `new authenticator factor for ${user}; scan the URI above (e.g. as a QR code). The previous factor no longer works.`,
    );
    return 0;
  } finally {
    await s.close();
  }
}

export async function outbox(flags: Flags): Promise<number> {
  const s = await stores(flags);
  let records;
  try {
    records = await s.embedded.deliveries.list(100);
  } finally {
    await s.close();
  }
  const rows = records.map((r) => ({
    id: r.id,
    username: r.username,
    channel: r.channel,
    address: r.address,
    subject: r.subject,
    body: r.body,
    created_at: r.createdAt,
    via: r.via,
  }));
  // Security: messages carry one-time links; they are masked unless the operator asks for the demo inbox view.
  const show = flags.values['show-links'] === true;
  const body = (b: string) =>
    show ? b : b.replace(/https?:\/\/\S+/g, '[one-time link hidden; --show-links to reveal]');
  if (flags.json) printJson(rows.map((r) => ({ ...r, body: body(r.body), created_at: iso(r.created_at) })));
  else if (!rows.length) out('outbox is empty');
  else
    for (const r of rows) {
      out(
        `#${r.id} ${iso(r.created_at)} to ${safeText(r.username)} via ${safeText(r.channel)} ${safeText(r.address)}: ${safeText(r.subject)}`,
      );
      // The body keeps its lines, each indented under its message; CR and other controls are escaped.
      out(safeText(body(r.body), { multiline: true }).replace(/^/gm, '    '));
    }
  return 0;
}
