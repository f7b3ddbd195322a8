/**
 * Operator actions outside a call (the console, the admin API, the CLI): each is one unit of work through the
 * runner, and a change that is audited appends its record in the same unit, so the change and its record commit
 * together or not at all (DESIGN §5).
 */
import type { AuditPort, KillSwitchControl, KillSwitchState, TokensPort } from '../store/ports/index.js';
import { andThen, UnitOfWork } from '../store/unit.js';

interface Deps<S> {
  store: S;
  audit: AuditPort;
}

/**
 * One unit: the operations `fill` adds, committed together (strictly: an operator's change is on disk when it is
 * reported done); resolves with the value of the operation `fill` returns.
 */
async function unit<T>(audit: AuditPort, fill: (u: UnitOfWork) => Promise<T>): Promise<T> {
  const u = new UnitOfWork('single');
  u.strict = true;
  const p = fill(u);
  await audit.commit(u);
  return p;
}

/** Engages or resumes the kill switch; the `killswitch.*` record is in the same unit. */
export function setKillSwitch(
  deps: Deps<{ killSwitch: KillSwitchControl }>,
  engaged: boolean,
  reason: string,
  actor: string,
): Promise<KillSwitchState> {
  return unit(deps.audit, (u) => {
    let st: KillSwitchState | undefined;
    const p = u.add((tx) => andThen(deps.store.killSwitch.set(tx, engaged, reason, actor), (s) => (st = s)));
    void deps.audit.append(u, () => [
      {
        event: engaged ? 'killswitch.engaged' : 'killswitch.resumed',
        actor,
        ts: st!.changedAt,
        detail: { reason, at: st!.changedAt },
      },
    ]);
    return p;
  });
}

/** A new bearer token (the secret is returned once); `token.created` in the same unit. */
export function createToken(
  deps: Deps<{ tokens: TokensPort }>,
  principal: string,
  actor: string,
  label?: string,
): Promise<{ token: string; id: string }> {
  return unit(deps.audit, (u) => {
    let id: string | undefined;
    const p = u.add((tx) => andThen(deps.store.tokens.create(tx, principal, actor, label), (t) => ((id = t.id), t)));
    void deps.audit.append(u, () => [
      { event: 'token.created', actor, detail: { id, principal, label: label ?? null } },
    ]);
    return p;
  });
}

/** Revokes a live token; `token.revoked` in the same unit when it was live. */
export function revokeToken(deps: Deps<{ tokens: TokensPort }>, id: string, actor: string): Promise<boolean> {
  return unit(deps.audit, (u) => {
    let revoked = false;
    const p = u.add((tx) => andThen(deps.store.tokens.revoke(tx, id), (r) => (revoked = r)));
    void deps.audit.append(u, () => (revoked ? [{ event: 'token.revoked', actor, detail: { id } }] : []));
    return p;
  });
}

const lastTouch = new WeakMap<TokensPort, Map<string, number>>();

/**
 * Records a token's last use at most once a minute per token and process: a write (and a commit) per request would
 * cost more than the call. Best effort: a failure is not the request's.
 */
export function touchToken(deps: Deps<{ tokens: TokensPort }>, id: string, now: number): void {
  let m = lastTouch.get(deps.store.tokens);
  if (!m) lastTouch.set(deps.store.tokens, (m = new Map()));
  if (now - (m.get(id) ?? 0) < 60_000) return;
  m.set(id, now);
  const u = new UnitOfWork('single');
  void u.add((tx) => deps.store.tokens.touch(tx, id, now));
  deps.audit.commit(u).catch(() => undefined);
}
