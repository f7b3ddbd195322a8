/**
 * Step 7. Human gates by tier (DESIGN §4).
 *  - auto: passes.
 *  - confirm: form elicitation with the summary and the agent's reason; only accept + approve=true proceeds.
 *    A client without elicitation cannot confirm: the request escalates to an approver.
 *  - mfa: the *target user* proves possession of their TOTP factor — on a page itguard serves (URL
 *    elicitation, or a link returned with APPROVAL_PENDING to clients without elicitation), or in a form when the
 *    client only has form mode and policy allows it. A code is never taken as a tool argument.
 *  - approval: an approver decides out of band; the call waits up to approvals.wait_seconds with progress
 *    notifications, then returns APPROVAL_PENDING with a request_id. Once approved the action runs exactly once:
 *    here if the call is still waiting (it claims the request), else by the background executor.
 * Every gate fails closed: no answer, a timeout or an error is a denial, never a pass.
 */
import type { CallToolResult } from '@modelcontextprotocol/sdk/types.js';
import { actionArgs, canonicalJson, sha256 } from '../canonical.js';
import type { ApprovalRow } from '../store/approvals-store.js';
import { raiseAlarm } from './alarm.js';
import type { GuardDeps } from './deps.js';
import { GuardError } from './errors.js';
import { KillSwitchAbort } from './execute.js';
import type { Call, Guard, Handler } from './types.js';

const POLL_MS = 250;
/** How long an MFA verification link stays valid. */
export const MFA_LINK_TTL_MS = 30 * 60_000;

export const bindingSha = (call: Call): string =>
  sha256(canonicalJson({ tool: call.tool.name, args: actionArgs(call.args) }));
const reasonOf = (call: Call): string => (typeof call.args.reason === 'string' ? call.args.reason : '');

function abortError(call: Call): GuardError {
  return call.signal.reason instanceof KillSwitchAbort
    ? new GuardError(
        'KILL_SWITCH_ENGAGED',
        'IT engaged the kill switch while this call waited for a human; nothing was done.',
      )
    : new GuardError('APPROVAL_DENIED', 'The call was cancelled while it waited for a human; nothing was done.');
}

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal.aborted) return reject(signal.reason);
    const t = setTimeout(() => (signal.removeEventListener('abort', onAbort), resolve()), ms);
    const onAbort = () => (clearTimeout(t), reject(signal.reason));
    signal.addEventListener('abort', onAbort, { once: true });
  });
}

type Deps = GuardDeps;

/** Elicits from the calling client; a timeout or transport error counts as cancel (fail closed), an abort as an abort. */
async function ask(deps: Deps, call: Call, params: Parameters<NonNullable<Call['client']>['elicit']>[0]) {
  try {
    return await call.client!.elicit(params, call.signal, deps.policy.approvals.waitSeconds * 1000);
  } catch {
    if (call.signal.aborted) throw abortError(call);
    return { action: 'cancel' as const, content: undefined };
  }
}

const auditGate = (deps: Deps, call: Call, event: string, detail: Record<string, unknown>) =>
  deps.audit.record({
    event,
    actor: call.principal.name,
    traceId: call.traceId,
    sessionId: call.session.id,
    tool: call.tool.name,
    detail,
  });

export const approval =
  (deps: Deps): Guard =>
  (next) =>
    async function approvalGuard(call) {
      const tier =
        call.tool.tierFor?.(call.args, { backends: deps.backends, toolPolicy: call.toolPolicy }) ??
        call.toolPolicy.tier ??
        call.tool.tier;
      if (tier === 'auto') return next(call);
      if (call.toolPolicy.mode === 'shadow') {
        call.shadowTier = tier; // evaluated, not gated: nothing will run
        return next(call);
      }
      if (tier === 'confirm') {
        if (call.client?.form) return confirmGate(deps, call, next);
        // Security: a client that cannot ask its user cannot confirm; an approver decides instead.
        return approverGate(deps, call, next, 'approval (escalated from confirm: the client has no elicitation)');
      }
      if (tier === 'mfa') return mfaGate(deps, call, next);
      return approverGate(deps, call, next, 'approval');
    };

async function confirmGate(deps: Deps, call: Call, next: Handler): Promise<CallToolResult> {
  const summary = call.tool.summary(call.args);
  const r = await ask(deps, call, {
    mode: 'form',
    message: `Please confirm: ${summary}\nReason given by the agent: ${reasonOf(call)}`,
    requestedSchema: {
      type: 'object',
      properties: { approve: { type: 'boolean', title: 'Approve this action?', description: summary } },
      required: ['approve'],
    },
  });
  // Security: only an explicit accept with approve = true proceeds; decline, cancel, timeout and errors deny.
  if (r.action === 'accept' && r.content?.approve === true) {
    await auditGate(deps, call, 'approval.confirmed', { tier: 'confirm', summary });
    return next(call);
  }
  await auditGate(deps, call, 'approval.declined', { tier: 'confirm', action: r.action });
  throw new GuardError(
    'APPROVAL_DENIED',
    `The user did not confirm "${summary}" (${r.action === 'accept' ? 'not approved' : r.action}).`,
  );
}

async function approverGate(deps: Deps, call: Call, next: Handler, tierNote: string): Promise<CallToolResult> {
  const row = openOrCreate(deps, call, 'approval', false).row;
  await auditGate(deps, call, 'approval.requested', { request_id: row.id, tier: tierNote });
  return waitAndRun(deps, call, next, row.id, `waiting for an IT approver to decide ${row.id}`);
}

function openOrCreate(
  deps: Deps,
  call: Call,
  tier: 'approval' | 'mfa',
  withVerifyLink: boolean,
): { row: ApprovalRow; verifyToken: string | undefined } {
  const argsSha = bindingSha(call);
  const open = deps.approvals.findOpen(call.principal.name, call.tool.name, argsSha);
  if (open) {
    // The same action is already awaiting a decision: wait on it rather than ask twice. This call's own
    // cap reservation is given back by the caps step (the open request holds one already).
    call.capsRedundant = true;
    return {
      row: open,
      verifyToken: withVerifyLink && open.status === 'pending' ? deps.approvals.rotateVerifyLink(open.id) : undefined,
    };
  }
  const ttlMs =
    tier === 'mfa'
      ? Math.min(MFA_LINK_TTL_MS, deps.policy.approvals.expireHours * 3600_000)
      : deps.policy.approvals.expireHours * 3600_000;
  const created = deps.approvals.create({
    tier,
    principal: call.principal.name,
    sessionId: call.session.id,
    tool: call.tool.name,
    args: call.args,
    argsSha,
    summary: call.tool.summary(call.args),
    reason: reasonOf(call),
    target: call.tool.capKeys(call.args, deps.backends).target,
    caps: call.capPreview ?? [],
    capItems: call.capItems ?? [],
    idemKey: call.idemRecordKey,
    requestId: call.idempotencyKey,
    traceId: call.traceId,
    ttlMs,
    withVerifyLink,
  });
  call.capsHeldByApproval = true;
  return created;
}

function pending(row: ApprovalRow, message: string, extra: Record<string, unknown> = {}): GuardError {
  return new GuardError('APPROVAL_PENDING', message, {
    details: { request_id: row.id, status: row.status, expires_at: new Date(row.expires_at).toISOString(), ...extra },
  });
}

/** Waits for the request's decision; runs it here if approved while waiting (claiming it exactly once). */
async function waitAndRun(
  deps: Deps,
  call: Call,
  next: Handler,
  id: string,
  progressMessage: string,
): Promise<CallToolResult> {
  const waitMs = deps.policy.approvals.waitSeconds * 1000;
  // Waiting is measured on the monotonic clock; deps.now (policy time, injectable) governs expiry and windows.
  const started = performance.now();
  for (;;) {
    const row = deps.approvals.get(id);
    if (!row) throw new GuardError('INTERNAL', `approval ${id} vanished`);
    switch (row.status) {
      case 'approved':
        if (deps.approvals.claim(id)) return runClaimed(deps, call, next, row);
        break; // another process claimed it: wait for its result
      case 'succeeded':
      case 'failed':
        return storedResult(row);
      case 'denied':
        throw new GuardError(
          'APPROVAL_DENIED',
          `${row.decided_by ?? 'An approver'} denied request ${id}${row.note ? `: ${row.note}` : ''}.`,
          { details: { request_id: id } },
        );
      case 'expired':
        throw new GuardError('APPROVAL_DENIED', `Request ${id} expired without a decision.`, {
          details: { request_id: id },
        });
      case 'pending':
      case 'executing':
        break;
    }
    const waited = performance.now() - started;
    if (waited >= waitMs && row.status === 'pending') {
      throw pending(
        row,
        `Request ${id} is waiting for a human decision (${row.summary}). It will run by itself once approved; check with request_status.`,
      );
    }
    await call.client?.progress(Math.min(waited, waitMs) / 1000, waitMs / 1000, progressMessage);
    try {
      await sleep(POLL_MS, call.signal);
    } catch {
      throw abortError(call);
    }
  }
}

export function storedResult(row: ApprovalRow): CallToolResult {
  const r = JSON.parse(row.result ?? '{}') as CallToolResult;
  return { ...r, _meta: { ...r._meta, 'itguard/request_id': row.id } };
}

async function runClaimed(deps: Deps, call: Call, next: Handler, row: ApprovalRow): Promise<CallToolResult> {
  // Security: the binding hash matched, so the arguments executed are the ones approved.
  await auditGate(deps, call, 'approval.consumed', { request_id: row.id, decided_by: row.decided_by });
  let result: CallToolResult;
  try {
    result = await next(call);
  } catch (e) {
    deps.approvals.finish(
      row.id,
      'failed',
      e instanceof GuardError
        ? e.toToolResult(call.traceId)
        : { isError: true, content: [{ type: 'text', text: 'INTERNAL' }] },
    );
    throw e;
  }
  deps.approvals.finish(row.id, result.isError ? 'failed' : 'succeeded', result);
  return { ...result, _meta: { ...result._meta, 'itguard/request_id': row.id } };
}

async function mfaGate(deps: Deps, call: Call, next: Handler): Promise<CallToolResult> {
  const target = call.tool.capKeys(call.args, deps.backends).target;
  if (!target) throw new GuardError('INTERNAL', `${call.tool.name} has no MFA target`);
  if (!deps.mfa.has(target)) {
    throw new GuardError('APPROVAL_UNAVAILABLE', `${target} has no enrolled authenticator, so they cannot confirm.`, {
      next: `Tell the user to contact IT to enroll an authenticator for ${target}.`,
    });
  }
  const locked = deps.mfa.lockedUntil(target);
  if (locked) {
    throw new GuardError(
      'APPROVAL_DENIED',
      `${target}'s authenticator is locked after too many wrong codes, until ${new Date(locked).toISOString()}.`,
    );
  }
  const c = call.client;
  if (c?.url) return mfaByPage(deps, call, next, target, 'url');
  if (c?.form && deps.policy.mfa.allowFormCode) return mfaByForm(deps, call, next, target);
  if (deps.policy.mfa.outOfBand) return mfaByPage(deps, call, next, target, 'link');
  // Security: no way to reach the target user → refuse; never auto-confirm.
  throw new GuardError(
    'APPROVAL_UNAVAILABLE',
    `This client cannot collect ${target}'s confirmation and out-of-band links are disabled by policy.`,
  );
}

async function mfaByForm(deps: Deps, call: Call, next: Handler, target: string): Promise<CallToolResult> {
  const summary = call.tool.summary(call.args);
  const r = await ask(deps, call, {
    mode: 'form',
    message: `${target} must confirm this with their authenticator app: ${summary}.\nReason: ${reasonOf(call)}\nAsk ${target} to type the current 6-digit code.`,
    requestedSchema: {
      type: 'object',
      properties: { code: { type: 'string', title: `${target}'s 6-digit code`, minLength: 6, maxLength: 6 } },
      required: ['code'],
    },
  });
  const code = r.action === 'accept' ? r.content?.code : undefined;
  if (typeof code !== 'string') {
    await auditGate(deps, call, 'mfa.declined', { target, channel: 'form', action: r.action });
    throw new GuardError('APPROVAL_DENIED', `${target} did not confirm (${r.action}).`);
  }
  const v = deps.mfa.verify(target, code.trim());
  if (!v.ok) {
    await auditGate(deps, call, 'mfa.failed', { target, channel: 'form', why: v.why });
    if (v.justLocked)
      await raiseAlarm(deps, call, {
        kind: 'MFA_LOCKED',
        rule: 'mfa-failures',
        message: `${target}'s authenticator locked after 5 wrong codes`,
        detail: { target },
      });
    throw new GuardError('APPROVAL_DENIED', `The code for ${target} was not accepted (${v.why}).`);
  }
  await auditGate(deps, call, 'mfa.verified', { target, channel: 'form' });
  return next(call);
}

async function mfaByPage(
  deps: Deps,
  call: Call,
  next: Handler,
  target: string,
  how: 'url' | 'link',
): Promise<CallToolResult> {
  await deps.links.ready; // stdio: the loopback page may still be starting
  const { row, verifyToken } = openOrCreate(deps, call, 'mfa', true);
  const link = verifyToken ? `${deps.links.base}/verify/${verifyToken}` : undefined;
  await auditGate(deps, call, 'approval.requested', { request_id: row.id, tier: 'mfa', target, channel: how });
  if (how === 'link' || !link) {
    throw pending(
      row,
      `${target} must confirm "${row.summary}" with their authenticator. Give ${target} this one-time link; nothing happens until they enter their code there: ${link ?? '(link already issued)'} . Then check with request_status.`,
      link ? { verification_link: link, target } : { target },
    );
  }
  const r = await ask(deps, call, {
    mode: 'url',
    message: `${target} must confirm "${row.summary}" by entering the code from their authenticator app on this page.`,
    url: link,
    elicitationId: row.id,
  });
  if (r.action !== 'accept') {
    deps.approvals.decide(row.id, false, { name: `user-${r.action}` }, `URL elicitation ${r.action}`);
    await auditGate(deps, call, 'mfa.declined', { target, channel: 'url', action: r.action, request_id: row.id });
    throw new GuardError(
      'APPROVAL_DENIED',
      `The confirmation page was ${r.action === 'decline' ? 'declined' : 'cancelled'}; nothing was done.`,
      { details: { request_id: row.id } },
    );
  }
  return waitAndRun(deps, call, next, row.id, `waiting for ${target} to enter their code (${row.id})`);
}
