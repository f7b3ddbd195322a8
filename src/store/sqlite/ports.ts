/**
 * The SQLite adapter of the store ports (store/ports/). better-sqlite3 is synchronous: every method answers at
 * once, and a method that takes a unit's `tx` runs on the connection whose transaction the unit runner
 * (committer.ts) holds open around the unit's operations, so the handle itself is not needed.
 */
import type { GuardStore, Store } from '../ports/index.js';
import type { ApprovalsStore } from './approvals-store.js';
import type { AuditStore } from './audit-store.js';
import type { BudgetStore } from './budget-store.js';
import type { CapsStore } from './caps-store.js';
import type { IdempotencyStore } from './idempotency-store.js';
import type { KillSwitchStore } from './killswitch-store.js';
import type { NotifyStore } from './notify-store.js';
import type { TokenStore } from './token-store.js';

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

/** Every port (store/ports/operator.ts `Store`): the guards' and the operator surfaces'. */
export function sqliteStore(s: {
  killSwitch: KillSwitchStore;
  budgets: BudgetStore;
  idem: IdempotencyStore;
  caps: CapsStore;
  approvals: ApprovalsStore;
  auditStore: AuditStore;
  tokens: TokenStore;
  notifyStore: NotifyStore;
}): Store {
  const g = sqliteGuardStore(s);
  const { killSwitch, budgets, caps, approvals, auditStore: audit, tokens, notifyStore: notify } = s;
  return {
    ...g,
    killSwitch: { ...g.killSwitch, set: (_tx, engaged, reason, actor) => killSwitch.set(engaged, reason, actor) },
    budgets: {
      ...g.budgets,
      tasks: (idleMs, now, o) => budgets.tasks(idleMs, now, o),
      task: (principal, t, idleMs, now) => budgets.task(principal, t, idleMs, now),
      taskCounts: (idleMs, now) => budgets.taskCounts(idleMs, now),
      usage: (rules, now, who) => budgets.usage(rules, now, who),
      breaker: (principal, now) => budgets.breaker(principal, now),
      breakers: (now) => budgets.breakers(now),
      reset: (_tx, principal, now) => budgets.reset(principal, now),
      resetTask: (_tx, id, idleMs, now) => budgets.resetTask(id, idleMs, now),
    },
    caps: {
      ...g.caps,
      usage: (rule, now) => caps.usage(rule, now),
      resetsAt: (rule, now) => caps.resetsAt(rule, now),
    },
    approvals: {
      ...g.approvals,
      list: (statuses, limit) => approvals.list(statuses, limit),
      byVerifyToken: (token) => approvals.byVerifyToken(token),
      countsByClass: () => approvals.countsByClass(),
      consumeVerifyLink: (_tx, id) => approvals.consumeVerifyLink(id),
    },
    auditLog: {
      head: () => audit.head(),
      tail: (limit) => audit.tail(limit),
      byTrace: (traceId) => audit.byTrace(traceId),
      byTask: (taskId, limit) => audit.byTask(taskId, limit),
      lastEvent: (event) => audit.lastEvent(event),
      callRecordsBetween: (from, to, exceptTool) => audit.callRecordsBetween(from, to, exceptTool),
      confirmCounts: () => audit.confirmCounts(),
      all: () => audit.iterate(),
      verify: (o) => audit.verify(o),
    },
    tokens: {
      create: (_tx, principal, actor, label) => tokens.create(principal, actor, label),
      verify: (token) => tokens.verify(token),
      touch: (_tx, id, now) => tokens.touch(id, now),
      list: () => tokens.list(),
      revoke: (_tx, id) => tokens.revoke(id),
    },
    notify: {
      enqueue: (_tx, jobs) => notify.enqueue(jobs),
      get: (id) => notify.get(id),
      list: (f) => notify.list(f),
      claimDue: (_tx, leaseMs, limit, requestId) => notify.claimDue(leaseMs, limit, requestId),
      sent: (_tx, id, ref) => notify.sent(id, ref),
      attemptFailed: (_tx, id, error, next) => notify.attemptFailed(id, error, next),
      retry: (_tx, id) => notify.retry(id),
      openRequests: (limit) => notify.openRequests(limit),
      jobsFor: (requestId) => notify.jobsFor(requestId),
      close: (_tx, requestId, outcomes) => notify.close(requestId, outcomes),
    },
  };
}
