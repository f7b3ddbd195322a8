/**
 * Shared by the human gates: approval requests bound to a call (open or create), waiting on a decision with
 * progress notifications, and running an approved request exactly once (claim, execute, record the result).
 */
import type { CallToolResult } from '@modelcontextprotocol/server';
import { actionArgs, canonicalJson, sha256 } from '../canonical.js';
import type { ApprovalRow } from '../store/ports/index.js';
import type { GuardDeps, WaitClock } from './deps.js';
import { afterCall, write } from './units.js';
import { andThen, UnitOfWork } from '../store/unit.js';
import { GuardError } from '../core/errors.js';
import { KillSwitchAbort } from './execute.js';
import { checkScope } from './scope.js';
import { resolveCall } from './validate.js';
import type { Call, Handler } from './types.js';

export const POLL_MS = 250;
/** How long an MFA verification link stays valid. */
export const MFA_LINK_TTL_MS = 30 * 60_000;

export const bindingSha = (call: Call): string =>
  sha256(canonicalJson({ tool: call.tool.name, args: actionArgs(call.args) }));
export const reasonOf = (call: Call): string => (typeof call.args.reason === 'string' ? call.args.reason : '');

export function abortError(call: Call): GuardError {
  return call.signal.reason instanceof KillSwitchAbort
    ? new GuardError(
        'KILL_SWITCH_ENGAGED',
        'IT engaged the kill switch while this call waited for a human; nothing was done.',
      )
    : new GuardError('APPROVAL_DENIED', 'The call was cancelled while it waited for a human; nothing was done.');
}

export function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal.aborted) return reject(signal.reason);
    const t = setTimeout(() => (signal.removeEventListener('abort', onAbort), resolve()), ms);
    const onAbort = () => (clearTimeout(t), reject(signal.reason));
    signal.addEventListener('abort', onAbort, { once: true });
  });
}

export type Deps = GuardDeps;

/** performance.now and a real, abortable sleep. */
export const REAL_WAIT_CLOCK: WaitClock = { now: () => performance.now(), sleep };

export const auditGate = (deps: Deps, call: Call, event: string, detail: Record<string, unknown>) =>
  deps.audit.record({
    event,
    actor: call.principal.name,
    onBehalfOf: call.principal.onBehalfOf,
    traceId: call.traceId,
    sessionId: call.session?.id,
    taskId: call.task.id,
    tool: call.tool.name,
    detail,
  });

export async function openOrCreate(
  deps: Deps,
  call: Call,
  tier: 'approval' | 'mfa' | 'confirm',
  withVerifyLink: boolean,
): Promise<{ row: ApprovalRow; verifyToken: string | undefined }> {
  const argsSha = bindingSha(call);
  const open = await deps.store.approvals.findOpen(call.principal.name, call.tool.name, argsSha);
  if (open) {
    // The same action is already awaiting a decision: wait on it rather than ask twice. The open request holds
    // a reservation already, so this call's own is given back now.
    const u = new UnitOfWork('single');
    const caps = call.state.caps;
    if (caps?.holder === 'call') {
      void u.add((tx) => deps.store.caps.release(tx, caps.items, caps.hold));
      caps.holder = 'none';
    }
    const token =
      withVerifyLink && open.status === 'pending'
        ? u.add((tx) => deps.store.approvals.rotateVerifyLink(tx, open.id))
        : undefined;
    await deps.audit.commit(u);
    return { row: open, verifyToken: token && (await token) };
  }
  const ttlMs =
    tier !== 'approval'
      ? Math.min(MFA_LINK_TTL_MS, deps.policy.approvals.expireHours * 3600_000)
      : deps.policy.approvals.expireHours * 3600_000;
  const u = new UnitOfWork('single');
  let row: ApprovalRow | undefined;
  const created = u.add((tx) =>
    andThen(
      deps.store.approvals.create(tx, {
        tier,
        principal: call.principal.name,
        onBehalfOf: call.principal.onBehalfOf,
        onBehalfOfId: call.principal.onBehalfOfId,
        sessionId: call.session?.id,
        taskId: call.task.id,
        tool: call.tool.name,
        args: call.args,
        argsSha,
        summary: call.tool.summary(call.args),
        reason: reasonOf(call),
        target: call.state.resolved.target,
        caps: call.state.caps?.preview ?? [],
        capItems: call.state.caps?.holder === 'call' ? call.state.caps.items : [],
        idemKey: call.state.requestId,
        requestId: call.idempotencyKey,
        traceId: call.traceId,
        ttlMs,
        withVerifyLink,
      }),
      (c) => ((row = c.row), c),
    ),
  );
  // Approvers (or, for mfa, the webhooks) are told: the notices are enqueued in the unit that creates the request
  // (it exists only with them), and sent off this path once it has committed.
  const notify = tier === 'approval' || tier === 'mfa' ? deps.notify : undefined;
  if (notify) void u.add((tx) => notify.requested(tx, row!));
  await deps.audit.commit(u);
  notify?.kick();
  // The request now holds the reservation: it is given back if the request is denied or expires, spent if it runs.
  if (call.state.caps?.holder === 'call') call.state.caps.holder = 'approval';
  return created;
}

export function pending(row: ApprovalRow, message: string, extra: Record<string, unknown> = {}): GuardError {
  return new GuardError('APPROVAL_PENDING', message, {
    details: { request_id: row.id, status: row.status, expires_at: new Date(row.expires_at).toISOString(), ...extra },
  });
}

/** Waits for the request's decision; runs it here if approved while waiting (claiming it exactly once). */
export async function waitAndRun(
  deps: Deps,
  call: Call,
  next: Handler,
  id: string,
  progressMessage: string,
): Promise<CallToolResult> {
  const waitMs = deps.policy.approvals.waitSeconds * 1000;
  // Waiting is measured on the wait clock (monotonic; injectable); deps.now (policy time) governs expiry and windows.
  const clock = deps.waitClock ?? REAL_WAIT_CLOCK;
  const started = clock.now();
  for (;;) {
    const row = await deps.store.approvals.get(id);
    if (!row) throw new GuardError('INTERNAL', `approval ${id} vanished`);
    switch (row.status) {
      case 'approved':
        if (
          await write(deps, (tx) =>
            deps.store.approvals.claim(tx, id, deps.now(), runLeaseMs(call.toolPolicy.timeoutMs)),
          )
        )
          return runApproved(deps, row, call, next);
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
    const waited = clock.now() - started;
    // Every wait is bounded: a request still pending, or running in another process (or being recovered after
    // its runner died), is reported with its id once the wait is over.
    if (waited >= waitMs) {
      throw pending(
        row,
        row.status === 'pending'
          ? `Request ${id} is waiting for a human decision (${row.summary}). It will run by itself once approved; check with request_status.`
          : `Request ${id} was approved and is ${row.status === 'executing' ? 'being executed' : 'about to run'}; check with request_status.`,
      );
    }
    await call.client?.progress(Math.min(waited, waitMs) / 1000, waitMs / 1000, progressMessage);
    try {
      await clock.sleep(POLL_MS, call.signal);
    } catch {
      throw abortError(call);
    }
  }
}

export function storedResult(row: ApprovalRow): CallToolResult {
  const r = JSON.parse(row.result ?? '{}') as CallToolResult;
  return { ...r, _meta: { ...r._meta, 'itguard/request_id': row.id } };
}

/** How long a claimed request may run before another process treats its runner as gone: the tool's timeout and a margin. */
export const runLeaseMs = (timeoutMs: number): number => timeoutMs + 30_000;

/**
 * The one path that runs an approved request, whether its caller is still waiting (`run` = the rest of the
 * caller's pipeline) or gone (`run` = the executor's chain, built from the same steps). The request has been
 * claimed (executing, with this process as runner). Scope, enablement and the tool's argument policy are
 * checked again first: a user disabled, or moved into a denied group, since the request was made fails it with
 * that refusal, and nothing runs.
 */
export async function runApproved(deps: Deps, row: ApprovalRow, call: Call, run: Handler): Promise<CallToolResult> {
  const withId = (r: CallToolResult): CallToolResult => ({ ...r, _meta: { ...r._meta, 'itguard/request_id': row.id } });
  let result: CallToolResult;
  try {
    await recheck(deps, call);
  } catch (e) {
    const refusal =
      e instanceof GuardError ? e : new GuardError('INTERNAL', 'The approved request could not be re-checked.');
    await auditGate(deps, call, 'approval.revoked', {
      request_id: row.id,
      code: refusal.code,
      message: refusal.message,
    }).catch(() => undefined);
    const failed = refusal.toToolResult(call.traceId);
    void afterCall(deps, call, (tx) => deps.store.approvals.finish(tx, row.id, 'failed', failed, { nothingRan: true }));
    throw refusal;
  }
  // Security: the binding hash matched, so the arguments executed are the ones approved.
  await auditGate(deps, call, 'approval.consumed', { request_id: row.id, decided_by: row.decided_by });
  try {
    result = await run(call);
  } catch (e) {
    // Nothing ran (stopped before the side effect, e.g. by the kill switch): the reservation is given back.
    const nothingRan = call.state.executedAt === undefined;
    const failed =
      e instanceof GuardError
        ? e.toToolResult(call.traceId)
        : { isError: true, content: [{ type: 'text', text: 'INTERNAL' }] };
    // The request's final state commits with the call's outcome record (its settlement).
    void afterCall(deps, call, (tx) => deps.store.approvals.finish(tx, row.id, 'failed', failed, { nothingRan }));
    throw e;
  }
  const nothingRan = !!result.isError && call.state.executedAt === undefined;
  const done = result;
  void afterCall(deps, call, (tx) =>
    deps.store.approvals.finish(tx, row.id, done.isError ? 'failed' : 'succeeded', done, { nothingRan }),
  );
  return withId(result);
}

/** The world may have changed since the request was made; the approval authorises only what policy still allows. */
async function recheck(deps: Deps, call: Call): Promise<void> {
  // Security: the same scope and argument-policy decisions as the pipeline's steps, taken again now.
  checkScope(call);
  const approved = canonicalJson(call.args);
  await resolveCall(deps, call);
  // The approved action is complete (defaults were filled before it was approved): a resolve that would now fill
  // in something else (the user's only device changed) means the approval no longer describes what would run.
  if (canonicalJson(call.args) !== approved)
    throw new GuardError(
      'POLICY_DENIED',
      'The approved action no longer matches what policy would run now; ask again.',
    );
}
