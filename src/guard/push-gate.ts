/**
 * The mfa tier with a push factor (`factors: { kind: okta }`): the target user approves an Okta Verify push on
 * their own phone. Nothing is typed anywhere and nothing travels through the MCP client, so this is the same on
 * both protocol eras and for clients with or without elicitation.
 *
 * The approval request stays the single source of truth: a watcher polls the push and decides the request
 * (SUCCESS → approved; REJECTED or TIMEOUT → denied, so the call fails with APPROVAL_DENIED). The call waits on
 * the request like any gate (`waitAndRun`, with progress); past `approvals.wait_seconds` it returns
 * APPROVAL_PENDING and the watcher goes on, so an approval that comes later runs once through the executor.
 * A retry of the same action joins the open request and its push; it never sends a second push while one is open
 * in this process. A push whose watcher died with its process leaves the request pending until it expires.
 */
import { write } from './units.js';
import type { CallToolResult } from '@modelcontextprotocol/server';
import type { PushChallenge, PushFactors, PushResult } from '../core/ports/factors.js';
import { auditGate, openOrCreate, sleep, waitAndRun, type Deps } from './gate-requests.js';
import type { Call, Handler } from './types.js';

const watching = new Map<string, Promise<void>>();

export async function mfaByPush(
  deps: Deps,
  call: Call,
  next: Handler,
  target: string,
  push: PushFactors,
): Promise<CallToolResult> {
  const { row } = await openOrCreate(deps, call, 'mfa', false);
  if (row.status === 'pending' && !watching.has(row.id)) {
    await auditGate(deps, call, 'approval.requested', { request_id: row.id, tier: 'mfa', target, channel: 'push' });
    let challenge: PushChallenge;
    try {
      challenge = await push.start(target, { signal: call.signal });
    } catch (e) {
      // Nothing reached the phone: the request is closed so a retry asks again.
      await write(deps, (tx) =>
        deps.store.approvals.decide(tx, row.id, false, { name: 'itguard' }, 'the push could not be sent'),
      );
      throw e;
    }
    await auditGate(deps, call, 'mfa.push_sent', { request_id: row.id, target });
    const w = watch(deps, call, row.id, target, push, challenge).finally(() => watching.delete(row.id));
    watching.set(row.id, w);
  }
  return waitAndRun(deps, call, next, row.id, `waiting for ${target} to approve the Okta Verify push on their phone`);
}

/** Polls the push until it resolves (or Okta's own timeout passes) and decides the request accordingly. */
async function watch(
  deps: Deps,
  call: Call,
  id: string,
  target: string,
  push: PushFactors,
  c: PushChallenge,
): Promise<void> {
  const stop = AbortSignal.timeout(push.ttlMs + 30_000);
  const started = performance.now();
  let result: PushResult = 'WAITING';
  let failures = 0;
  while (result === 'WAITING') {
    if ((await deps.store.approvals.get(id))?.status !== 'pending') return; // decided elsewhere (expired, kill switch, console)
    if (performance.now() - started > push.ttlMs + 30_000) {
      result = 'TIMEOUT';
      break;
    }
    try {
      await sleep(push.pollMs, stop);
      result = await push.poll(c, { signal: stop });
      failures = 0;
    } catch (e) {
      // Fail closed: a push whose state cannot be read after a few tries is not a yes.
      if (++failures >= 5 || stop.aborted) {
        deps.log.warn({ request_id: id, err: e instanceof Error ? e.message : String(e) }, 'push state unreadable');
        result = 'TIMEOUT';
      }
    }
  }
  const ok = result === 'SUCCESS';
  const note = ok
    ? `${target} approved the Okta Verify push`
    : result === 'REJECTED'
      ? `${target} rejected the Okta Verify push on their phone`
      : `${target} did not answer the Okta Verify push in time`;
  const d = await write(deps, (tx) =>
    deps.store.approvals.decide(tx, id, ok, { name: `${target} (Okta Verify)` }, note),
  );
  if (d.ok)
    await auditGate(deps, call, ok ? 'mfa.verified' : 'mfa.declined', {
      request_id: id,
      target,
      channel: 'push',
      result: result.toLowerCase(),
    }).catch(() => undefined);
}

/** Tests: resolves when every watcher of this process has finished. */
export const pushWatchers = (): Promise<unknown> => Promise.all([...watching.values()]);
