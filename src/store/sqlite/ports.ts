/**
 * The SQLite adapter of the store ports (store/ports.ts). better-sqlite3 is synchronous: every method answers at
 * once, and a method that takes a unit's `tx` runs on the connection whose transaction the unit runner
 * (committer.ts) holds open around the unit's operations, so the handle itself is not needed.
 */
import type { GuardStore } from '../ports.js';
import type { ApprovalsStore } from './approvals-store.js';
import type { BudgetStore } from './budget-store.js';
import type { CapsStore } from './caps-store.js';
import type { IdempotencyStore } from './idempotency-store.js';
import type { KillSwitchStore } from './killswitch-store.js';

export function sqliteGuardStore(s: {
  killSwitch: KillSwitchStore;
  budgets: BudgetStore;
  idem: IdempotencyStore;
  caps: CapsStore;
  approvals: ApprovalsStore;
}): GuardStore {
  const { killSwitch, budgets, idem, caps, approvals } = s;
  return {
    killSwitch: { state: (maxAgeMs) => killSwitch.state(maxAgeMs) },
    budgets: {
      wouldRefuse: (i) => budgets.wouldRefuse(i),
      admit: (_tx, i) => budgets.admit(i),
      settle: (_tx, i) => budgets.settleInTx(i),
    },
    idem: {
      begin: (_tx, i) => idem.begin(i),
      finish: (_tx, principal, requestId, state, result, now) => idem.finish(principal, requestId, state, result, now),
      free: (_tx, principal, requestId) => idem.free(principal, requestId),
      adopt: (_tx, principal, requestId, traceId, now, leaseMs, from) =>
        idem.adopt(principal, requestId, traceId, now, leaseMs, from),
      park: (_tx, principal, requestId, approvalId, until, now) =>
        idem.park(principal, requestId, approvalId, until, now),
      unpark: (_tx, principal, requestId, approvalId) => idem.unpark(principal, requestId, approvalId),
    },
    caps: {
      reserve: (_tx, demands, now, hold) => caps.reserve(demands, now, hold),
      release: (_tx, items, hold) => caps.release(items, hold),
      used: (rule, scopeKey, now) => caps.used(rule, scopeKey, now),
    },
    approvals: {
      get: (id) => approvals.get(id),
      findOpen: (principal, tool, argsSha) => approvals.findOpen(principal, tool, argsSha),
      approvedReady: (limit) => approvals.approvedReady(limit),
      orphanedExecuting: (now, limit) => approvals.orphanedExecuting(now, limit),
      create: (_tx, a) => approvals.create(a),
      decide: (_tx, id, approve, actor, note, refuse) => approvals.decide(id, approve, actor, note, refuse),
      claim: (_tx, id, now, leaseMs) => approvals.claim(id, now, leaseMs),
      reclaim: (_tx, row, now, leaseMs) => approvals.reclaim(row, now, leaseMs),
      letGo: (id) => approvals.letGo(id),
      finish: (_tx, id, status, result, o) => approvals.finish(id, status, result, o),
      newStateNonce: (_tx, id) => approvals.newStateNonce(id),
      takeStateNonce: (_tx, id, nonce) => approvals.takeStateNonce(id, nonce),
      rotateVerifyLink: (_tx, id) => approvals.rotateVerifyLink(id),
    },
  };
}
