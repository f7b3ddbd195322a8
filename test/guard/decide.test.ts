/**
 * src/guard/decide.ts: one set of rules for every channel that decides an approval request (DESIGN §4). Requests are
 * made directly in the store (an in-memory app), so each rule is seen on its own; the console and the CLI paths
 * are covered end to end in test/http/oauth.test.ts, test/scenarios/containment.test.ts and test/e2e/cli-gates.test.ts.
 */
import { afterEach, describe, expect, it } from 'vitest';
import type { SqliteApp as App } from '../../src/app.js';
import { decide, type DecisionActor } from '../../src/guard/decide.js';
import { testApp } from '../helpers/harness.js';

let app: App | undefined;
afterEach(() => {
  app?.close();
  app = undefined;
});

const ISS = 'https://idp.example.com';

function request(a: App, o: { tier?: string; target?: string; onBehalfOf?: string; onBehalfOfId?: string } = {}) {
  return a.sqlite.approvals.create({
    tier: o.tier ?? 'approval',
    principal: 'helpdesk-agent',
    onBehalfOf: o.onBehalfOf,
    onBehalfOfId: o.onBehalfOfId,
    sessionId: undefined,
    tool: 'software_install',
    args: { user: o.target ?? 'jdoe', package: 'figma', reason: 'design work' },
    argsSha: `sha-${Math.random()}`,
    summary: 'Install figma for jdoe',
    reason: 'design work',
    target: o.target ?? 'jdoe',
    caps: [],
    capItems: [],
    idemKey: undefined,
    requestId: undefined,
    traceId: `trace-${Math.random().toString(36).slice(2)}`,
    ttlMs: 3600_000,
    withVerifyLink: o.tier === 'mfa',
  }).row;
}

const approver: DecisionActor = { name: 'console:it-approver', via: 'console', principal: 'it-approver' };

describe('decide', () => {
  it('refuses the requesting principal either decision', async () => {
    app = testApp();
    const row = request(app);
    const as = { name: 'console:helpdesk-agent', via: 'console', principal: 'helpdesk-agent' } as const;
    expect(await decide(app, { id: row.id, approve: true, actor: as })).toMatchObject({
      ok: false,
      reason: 'self_approval',
    });
    expect(await decide(app, { id: row.id, approve: false, actor: as })).toMatchObject({
      ok: false,
      reason: 'self_approval',
    });
    expect(app.sqlite.approvals.get(row.id)!.status).toBe('pending');
  });

  it('refuses the person the request was made for by issuer + sub, and by e-mail in any case', async () => {
    app = testApp();
    const row = request(app, { onBehalfOf: 'dana@example.com', onBehalfOfId: `${ISS} sub:dana` });
    const byId = { ...approver, personId: `${ISS} sub:dana`, person: 'dana' };
    expect(await decide(app, { id: row.id, approve: true, actor: byId })).toMatchObject({
      ok: false,
      reason: 'own_behalf',
    });
    const byMail = { ...approver, personId: `${ISS} sub:other`, person: 'x', email: 'DANA@Example.com' };
    expect(await decide(app, { id: row.id, approve: true, actor: byMail })).toMatchObject({
      ok: false,
      reason: 'own_behalf',
    });
    // A row from before identities were stored: the display name, case-insensitively.
    const old = request(app, { onBehalfOf: 'Dana@example.com' });
    const display = { ...approver, personId: `${ISS} sub:dana`, person: 'dana@EXAMPLE.com' };
    expect(await decide(app, { id: old.id, approve: true, actor: display })).toMatchObject({ reason: 'own_behalf' });
    // Another person approves; the person themselves may still deny.
    const other = {
      ...approver,
      personId: `${ISS} sub:irene`,
      person: 'irene@example.com',
      email: 'irene@example.com',
    };
    expect((await decide(app, { id: row.id, approve: true, actor: other })).ok).toBe(true);
    expect((await decide(app, { id: old.id, approve: false, actor: display })).ok).toBe(true);
  });

  it('refuses the target user approving an action on their own account', async () => {
    app = testApp();
    const row = request(app, { target: 'jdoe' });
    const jdoe = { ...approver, directoryUser: 'JDoe' };
    expect(await decide(app, { id: row.id, approve: true, actor: jdoe })).toMatchObject({
      ok: false,
      reason: 'target_user',
    });
  });

  it('approves mfa requests only through the target user’s code, and that channel nothing else', async () => {
    app = testApp();
    const mfa = request(app, { tier: 'mfa' });
    const cli: DecisionActor = { name: 'cli:ops', via: 'cli' };
    expect(await decide(app, { id: mfa.id, approve: true, actor: cli })).toMatchObject({
      ok: false,
      reason: 'wrong_tier',
    });
    expect(await decide(app, { id: mfa.id, approve: true, actor: approver })).toMatchObject({ reason: 'wrong_tier' });
    const target: DecisionActor = { name: 'mfa:jdoe', via: 'verify', directoryUser: 'jdoe' };
    const approval = request(app);
    expect(await decide(app, { id: approval.id, approve: true, actor: target })).toMatchObject({
      reason: 'wrong_tier',
    });
    expect((await decide(app, { id: mfa.id, approve: true, actor: target })).ok).toBe(true);
    const confirm = request(app, { tier: 'confirm' });
    expect(await decide(app, { id: confirm.id, approve: true, actor: cli })).toMatchObject({ reason: 'wrong_tier' });
  });

  it('audits every refusal with the request, the decision and the reason, in the same chain', async () => {
    app = testApp();
    const row = request(app);
    await decide(app, {
      id: row.id,
      approve: true,
      actor: { name: 'console:helpdesk-agent', via: 'console', principal: 'helpdesk-agent' },
    });
    await decide(app, { id: 'REQ-NOSUCH', approve: false, actor: { name: 'cli:ops', via: 'cli' } });
    await decide(app, { id: row.id, approve: false, note: 'no licence', actor: { name: 'cli:ops', via: 'cli' } });
    await decide(app, { id: row.id, approve: true, actor: approver });
    const rows = [...app.sqlite.auditStore.iterate()].filter((r) => r.event.startsWith('approval.'));
    expect(rows.map((r) => [r.event, r.code, r.actor])).toEqual([
      ['approval.refused', 'self_approval', 'console:helpdesk-agent'],
      ['approval.refused', 'not_found', 'cli:ops'],
      ['approval.denied', null, 'cli:ops'],
      ['approval.refused', 'not_pending', 'console:it-approver'],
    ]);
    expect(rows[0]!.trace_id).toBe(row.trace_id);
    expect(JSON.parse(rows[0]!.detail!)).toMatchObject({
      request_id: row.id,
      decision: 'approve',
      reason: 'self_approval',
    });
    expect(app.sqlite.auditStore.verify().ok).toBe(true);
  });
});
