/**
 * One gate implementation per tier, two askers (DESIGN §4): each in-band tier is driven through the 2025-11-25
 * asker (elicitation pushed on the session and awaited in the call) and the 2026-07-28 asker (`input_required`,
 * then a retry carrying the signed requestState and the answer) with the same scripted answers. The request each
 * leaves behind, its `decided_by`, the audit records about it and the call's answer must be the same on both eras.
 *
 * The calls go through the real pipeline (`app.pipeline`) with a scripted ClientGate in place of a connection: the
 * protocol plumbing (server.ts turning the refusal into `input_required`) is covered by test/e2e/mrtr.test.ts and
 * test/e2e/eras.test.ts.
 */
import type { ElicitResult } from '@modelcontextprotocol/server';
import { afterEach, describe, expect, it } from 'vitest';
import type { SqliteApp as App } from '../../src/app.js';
import { decide } from '../../src/guard/decide.js';
import type { ClientGate } from '../../src/guard/types.js';
import type { ApprovalRow } from '../../src/store/ports/index.js';
import { fakeCall } from '../helpers/fake-call.js';
import { testApp } from '../helpers/harness.js';
import { demoPolicy } from '../helpers/policy-builder.js';
import { fakeWaitClock } from '../helpers/wait-clock.js';

type Era = 'push' | 'mrtr';
type Script = 'approve' | 'not-approved' | 'wrong-code' | 'decline' | 'cancel' | 'timeout';
type Kind = 'confirm' | 'mfa-form' | 'mfa-url';
type Params = Parameters<ClientGate['elicit']>[0];
type Result = Awaited<ReturnType<App['pipeline']>>;
const codeOf = (r: Result) => (r._meta?.['itguard/error'] as { code?: string } | undefined)?.code;

const reason = 'the user asked in chat';
/** The action each kind gates (demo policy): a self-service install (confirm) and a password reset (mfa). */
const ACTION: Record<Kind, { tool: string; args: Record<string, unknown>; modes: ('form' | 'url')[]; key: string }> = {
  confirm: {
    tool: 'software_install',
    args: { user: 'jdoe', package: 'slack', reason },
    modes: ['form'],
    key: 'confirm',
  },
  'mfa-form': { tool: 'password_reset', args: { user: 'jdoe', reason }, modes: ['form'], key: 'code' },
  'mfa-url': { tool: 'password_reset', args: { user: 'jdoe', reason }, modes: ['url'], key: 'page' },
};

let apps: App[] = [];
afterEach(() => {
  for (const a of apps) a.close();
  apps = [];
});

function gatesApp(o: { stateTtlSeconds?: number } = {}): App {
  // Waits on a request pass on a fake clock; the pushed question's own timeout (wait_seconds) is real.
  const app = testApp({
    policy: demoPolicy().approvals({ wait_seconds: 1 }).parse(),
    executorPollMs: 60_000,
    waitClock: fakeWaitClock(),
    ...o,
  });
  apps.push(app);
  return app;
}

const onlyRequest = (app: App): ApprovalRow => {
  const rows = app.sqlite.db.prepare('SELECT * FROM approvals').all() as ApprovalRow[];
  expect(rows).toHaveLength(1);
  return app.sqlite.approvals.get(rows[0]!.id)!;
};

/** The target user enters their code on the verification page: what http/verify.ts does once the code checks. */
const pageConfirms = (app: App, id: string) =>
  decide(app, {
    id,
    approve: true,
    actor: { name: 'mfa:jdoe', via: 'verify', directoryUser: 'jdoe' },
    note: 'confirmed by the target user with their authenticator',
  });

/** The answer a script gives to a prompt (the page kind's accept first has the target confirm on the page). */
async function answerFor(app: App, kind: Kind, script: Script, requestId: string): Promise<ElicitResult> {
  switch (script) {
    case 'approve':
      if (kind === 'confirm') return { action: 'accept', content: { approve: true } };
      if (kind === 'mfa-form') return { action: 'accept', content: { code: app.sqlite.mfa.currentCode('jdoe')! } };
      expect((await pageConfirms(app, requestId)).ok).toBe(true);
      return { action: 'accept' };
    case 'not-approved':
      return { action: 'accept', content: { approve: false } };
    case 'wrong-code': {
      const right = app.sqlite.mfa.currentCode('jdoe')!;
      return { action: 'accept', content: { code: right.replace(/.$/, (d) => String((Number(d) + 1) % 10)) } };
    }
    case 'decline':
    case 'cancel':
      return { action: script };
    case 'timeout':
      throw new Error('a timeout has no answer');
  }
}

const noProgress = async () => undefined;

/** 2025-11-25: the question is pushed and answered within the call; a timeout never answers. */
async function runPush(kind: Kind, script: Script) {
  const app = gatesApp();
  const { tool, args, modes } = ACTION[kind];
  const asked: Params[] = [];
  const client: ClientGate = {
    era: 'legacy',
    form: modes.includes('form'),
    url: modes.includes('url'),
    mrtr: undefined,
    async elicit(params, _signal, timeoutMs) {
      asked.push(params);
      if (script === 'timeout')
        return new Promise((_, reject) => setTimeout(() => reject(new Error('Request timed out')), timeoutMs));
      return answerFor(app, kind, script, onlyRequest(app).id);
    },
    progress: noProgress,
  };
  const result = await app.pipeline(fakeCall(app, tool, args, 'helpdesk-agent', { client }));
  expect(asked).toHaveLength(1);
  expect(asked[0]!.mode).toBe(kind === 'mfa-url' ? 'url' : 'form');
  return { app, result };
}

/** 2026-07-28: round 1 answers input_required; the retry carries the state and the answer (a late one: expired). */
async function runMrtr(kind: Kind, script: Script) {
  const app = gatesApp(script === 'timeout' ? { stateTtlSeconds: -1 } : {});
  const { tool, args, modes, key } = ACTION[kind];
  const client: ClientGate = {
    era: 'modern',
    form: false,
    url: false,
    mrtr: { form: modes.includes('form'), url: modes.includes('url') },
    elicit: () => Promise.reject(new Error('2026-07-28 has no server-to-client requests')),
    progress: noProgress,
  };
  const modern = { session: undefined, task: { source: 'principal' as const, id: 'principal:helpdesk-agent' }, client };
  const first = fakeCall(app, tool, args, 'helpdesk-agent', modern);
  expect(codeOf(await app.pipeline(first))).toBe('APPROVAL_PENDING');
  const ir = first.state.inputRequired!;
  expect(Object.keys(ir.inputRequests)).toEqual([key]);
  const id = onlyRequest(app).id;
  const answer =
    script === 'timeout' ? { action: 'accept', content: { approve: true } } : await answerFor(app, kind, script, id);
  const retry = fakeCall(app, tool, args, 'helpdesk-agent', {
    ...modern,
    resume: { state: ir.requestState, responses: { [key]: answer } as never },
  });
  return { app, result: await app.pipeline(retry) };
}

/** What the two eras are compared by. `via` (elicitation | input_required) is the one field that names the era. */
function outcomeOf(app: App, result: Result) {
  const row = onlyRequest(app);
  const events = app.sqlite.auditStore
    .tail(1000)
    .filter((r) => /^(approval|mfa)\./.test(r.event))
    .map((r) => ({ event: r.event, detail: JSON.parse(r.detail ?? '{}') as Record<string, unknown> }))
    .filter((r) => r.detail.request_id === row.id)
    .map(({ event, detail }) => {
      const { request_id: _id, via, ...rest } = detail;
      return { event, via, ...rest };
    });
  return {
    code: codeOf(result) ?? 'ok',
    tier: row.tier,
    status: row.status,
    decided_by: row.decided_by,
    events,
    ran: row.status === 'succeeded',
  };
}

const strip = (o: ReturnType<typeof outcomeOf>) => ({ ...o, events: o.events.map(({ via: _v, ...e }) => e) });

/** The expected request state and audit trail per script (the same on both eras, timeout aside: see below). */
const EXPECTED: Record<
  Kind,
  Partial<Record<Script, { code: string; status: string; by: string | null; events: string[] }>>
> = {
  confirm: {
    approve: {
      code: 'ok',
      status: 'succeeded',
      by: 'client-user',
      events: ['approval.requested', 'approval.confirmed', 'approval.consumed'],
    },
    'not-approved': {
      code: 'APPROVAL_DENIED',
      status: 'denied',
      by: 'client-user',
      events: ['approval.requested', 'approval.declined'],
    },
    decline: {
      code: 'APPROVAL_DENIED',
      status: 'denied',
      by: 'client-user',
      events: ['approval.requested', 'approval.declined'],
    },
    cancel: {
      code: 'APPROVAL_DENIED',
      status: 'denied',
      by: 'client-user',
      events: ['approval.requested', 'approval.declined'],
    },
  },
  'mfa-form': {
    approve: {
      code: 'ok',
      status: 'succeeded',
      by: 'mfa:jdoe',
      events: ['approval.requested', 'mfa.verified', 'approval.consumed'],
    },
    'wrong-code': {
      code: 'APPROVAL_DENIED',
      status: 'denied',
      by: 'mfa:jdoe',
      events: ['approval.requested', 'mfa.failed'],
    },
    decline: {
      code: 'APPROVAL_DENIED',
      status: 'denied',
      by: 'client-user',
      events: ['approval.requested', 'mfa.declined'],
    },
    cancel: {
      code: 'APPROVAL_DENIED',
      status: 'denied',
      by: 'client-user',
      events: ['approval.requested', 'mfa.declined'],
    },
  },
  'mfa-url': {
    approve: {
      code: 'ok',
      status: 'succeeded',
      by: 'mfa:jdoe',
      events: ['approval.requested', 'approval.approved', 'approval.consumed'],
    },
    decline: {
      code: 'APPROVAL_DENIED',
      status: 'denied',
      by: 'client-user',
      events: ['approval.requested', 'mfa.declined'],
    },
    cancel: {
      code: 'APPROVAL_DENIED',
      status: 'denied',
      by: 'client-user',
      events: ['approval.requested', 'mfa.declined'],
    },
  },
};

const cases = (Object.keys(EXPECTED) as Kind[]).flatMap((kind) =>
  (Object.keys(EXPECTED[kind]) as Script[]).map((script) => [kind, script] as const),
);

describe('each in-band tier through both askers', () => {
  it.each(cases)('%s, %s: the same request, decision and audit on 2025-11-25 and 2026-07-28', async (kind, script) => {
    const want = EXPECTED[kind][script]!;
    const push = await runPush(kind, script);
    const mrtr = await runMrtr(kind, script);
    const p = outcomeOf(push.app, push.result);
    const m = outcomeOf(mrtr.app, mrtr.result);
    expect(strip(p)).toEqual(strip(m));
    expect(p).toMatchObject({
      code: want.code,
      status: want.status,
      decided_by: want.by,
      tier: kind === 'confirm' ? 'confirm' : 'mfa',
    });
    expect(p.events.map((e) => e.event)).toEqual(want.events);
    // Each era names itself on the records its asker made (the request, and the answer it brought back).
    for (const [o, via] of [
      [p, 'elicitation'],
      [m, 'input_required'],
    ] as const)
      for (const e of o.events.filter((x) => !['approval.consumed', 'approval.approved'].includes(x.event)))
        expect(e.via, `${e.event} on ${via}`).toBe(via);
    // Security: nothing ran unless the scripted answer approved.
    expect(p.ran).toBe(script === 'approve');
  });

  it('a decline never approves, even when the client sends content that would', async () => {
    for (const era of ['push', 'mrtr'] as Era[]) {
      for (const kind of ['confirm', 'mfa-form'] as Kind[]) {
        const app = gatesApp();
        const { tool, args, modes, key } = ACTION[kind];
        const content = kind === 'confirm' ? { approve: true } : { code: app.sqlite.mfa.currentCode('jdoe')! };
        const answer = { action: 'decline', content } as unknown as ElicitResult;
        let result: Result;
        if (era === 'push') {
          const client: ClientGate = {
            era: 'legacy',
            form: modes.includes('form'),
            url: false,
            mrtr: undefined,
            elicit: async () => answer,
            progress: noProgress,
          };
          result = await app.pipeline(fakeCall(app, tool, args, 'helpdesk-agent', { client }));
        } else {
          const client: ClientGate = {
            era: 'modern',
            form: false,
            url: false,
            mrtr: { form: true, url: false },
            elicit: () => Promise.reject(new Error('no')),
            progress: noProgress,
          };
          const first = fakeCall(app, tool, args, 'helpdesk-agent', { session: undefined, client });
          await app.pipeline(first);
          result = await app.pipeline(
            fakeCall(app, tool, args, 'helpdesk-agent', {
              session: undefined,
              client,
              resume: { state: first.state.inputRequired!.requestState, responses: { [key]: answer } as never },
            }),
          );
        }
        expect(codeOf(result), `${era} ${kind}`).toBe('APPROVAL_DENIED');
        expect(onlyRequest(app).status, `${era} ${kind}`).toBe('denied');
      }
    }
  });
});

describe('no answer in time', () => {
  it.each(['confirm', 'mfa-form', 'mfa-url'] as Kind[])(
    '%s: the call is refused and nothing runs on both eras',
    async (kind) => {
      // 2025-11-25: the server waited approvals.wait_seconds for the pushed question; no answer is "not confirmed",
      // and the request is denied (the same records as a cancel).
      const p = await runPush(kind, 'timeout');
      const push = outcomeOf(p.app, p.result);
      expect(push).toMatchObject({ code: 'APPROVAL_DENIED', status: 'denied', ran: false });
      expect(push.events.map((e) => e.event)).toEqual([
        'approval.requested',
        kind === 'confirm' ? 'approval.declined' : 'mfa.declined',
      ]);
      expect(push.events[1]).toMatchObject({ action: 'cancel' });
      // 2026-07-28: the server never waits; an answer that comes back after its round's state expired is refused
      // and changes nothing (an expired state is never trusted, so it cannot decide the request either way). The
      // request stays pending: a later round asks again, the page still works, and unanswered it expires.
      const m = await runMrtr(kind, 'timeout');
      const mrtr = outcomeOf(m.app, m.result);
      expect(mrtr).toMatchObject({ code: 'APPROVAL_DENIED', status: 'pending', ran: false });
      expect(mrtr.events.map((e) => e.event)).toEqual(['approval.requested']);
    },
  );
});

describe('a call cancelled while its question is open (2025-11-25)', () => {
  it('denies the request it opened: nothing is left pending, holding caps, for a client that is gone', async () => {
    const app = gatesApp();
    const ac = new AbortController();
    const client: ClientGate = {
      era: 'legacy',
      form: true,
      url: false,
      mrtr: undefined,
      elicit: (_p, signal) =>
        new Promise((_, reject) => {
          signal.addEventListener('abort', () => reject(new Error('cancelled')), { once: true });
          setTimeout(() => ac.abort(), 20);
        }),
      progress: noProgress,
    };
    const { tool, args } = ACTION.confirm;
    const r = await app.pipeline(fakeCall(app, tool, args, 'helpdesk-agent', { client, signal: ac.signal }));
    expect(codeOf(r)).toBe('APPROVAL_DENIED');
    expect(onlyRequest(app)).toMatchObject({ status: 'denied', decided_by: 'client-user' });
    expect(app.embedded.deploy.jobs()).toHaveLength(0);
  });
});

describe('the tiers without an in-band prompt are the same code on both eras', () => {
  const eras: [Era, ClientGate][] = [
    [
      'push',
      {
        era: 'legacy',
        form: false,
        url: false,
        mrtr: undefined,
        elicit: () => Promise.reject(new Error('none')),
        progress: noProgress,
      },
    ],
    [
      'mrtr',
      {
        era: 'modern',
        form: false,
        url: false,
        mrtr: undefined,
        elicit: () => Promise.reject(new Error('none')),
        progress: noProgress,
      },
    ],
  ];

  it('confirm without elicitation escalates to an approver; mfa goes out of band with a link; approval waits', async () => {
    const seen: Record<string, unknown>[] = [];
    for (const [era, client] of eras) {
      const over = era === 'mrtr' ? { session: undefined, client } : { client };
      const o: Record<string, unknown> = {};
      for (const [name, tool, args] of [
        ['confirm', 'software_install', ACTION.confirm.args],
        ['mfa', 'password_reset', ACTION['mfa-form'].args],
        ['approval', 'software_install', { user: 'jdoe', package: 'adobe-acrobat-pro', reason }],
      ] as const) {
        const app = gatesApp();
        const r = await app.pipeline(fakeCall(app, tool, args, 'helpdesk-agent', over));
        const meta = r._meta?.['itguard/error'] as Record<string, unknown>;
        const row = onlyRequest(app);
        o[name] = {
          code: meta.code,
          tier: row.tier,
          status: row.status,
          link: typeof meta.verification_link === 'string',
        };
      }
      seen.push(o);
    }
    expect(seen[0]).toEqual({
      confirm: { code: 'APPROVAL_PENDING', tier: 'approval', status: 'pending', link: false },
      mfa: { code: 'APPROVAL_PENDING', tier: 'mfa', status: 'pending', link: true },
      approval: { code: 'APPROVAL_PENDING', tier: 'approval', status: 'pending', link: false },
    });
    expect(seen[1]).toEqual(seen[0]);
  });
});
