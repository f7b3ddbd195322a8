/**
 * The Okta directory and factors adapters against the loopback Okta stand-in (test/helpers/okta-standin.ts): real
 * HTTP, SSWS auth, paged groups, push verify and poll, the e-mailed reset, X-Rate-Limit-* and E0000006/E0000047;
 * and end to end through a real MCP client: a reset waits for the user's phone, then Okta mails the link.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { BackendError } from '../../src/core/backend.js';
import { OktaDirectory } from '../../src/tools/directory/okta.js';
import { OktaFactors } from '../../src/tools/factors/okta.js';
import { pushWatchers } from '../../src/guard/push-gate.js';
import { connect, codeOf, silent, testApp, textOf } from '../helpers/harness.js';
import { demoPolicy } from '../helpers/policy-builder.js';
import { OktaStandin } from '../helpers/okta-standin.js';

const TOKEN = '00aBcD-okta-api-token-secret-value';
let okta: OktaStandin;
beforeEach(async () => {
  okta = await OktaStandin.start(TOKEN, [
    {
      id: '00u1',
      login: 'jdoe@northwind.example',
      email: 'jdoe@northwind.example',
      firstName: 'Jane',
      lastName: 'Doe',
      groups: ['Everyone', 'staff', 'finance'],
    },
    {
      id: '00u2',
      login: 'root@northwind.example',
      email: 'root@northwind.example',
      firstName: 'Ro',
      lastName: 'Ot',
      groups: ['Everyone', 'admins'],
    },
    {
      id: '00u3',
      login: 'gone@northwind.example',
      email: 'gone@northwind.example',
      firstName: 'Go',
      lastName: 'Ne',
      status: 'SUSPENDED',
    },
    {
      id: '00u4',
      login: 'rpatel@northwind.example',
      email: 'rpatel@northwind.example',
      firstName: 'Ravi',
      lastName: 'Patel',
      answer: 'REJECTED',
    },
  ]);
});
afterEach(() => okta.close());

const live = () => ({ signal: new AbortController().signal });
const dir = () => new OktaDirectory({ orgUrl: okta.url, apiToken: TOKEN, retryBaseMs: 5 });

async function rejection(p: Promise<unknown>): Promise<BackendError> {
  const e = await p.then(
    () => {
      throw new Error('expected a rejection');
    },
    (x: unknown) => x,
  );
  expect(e).toBeInstanceOf(BackendError);
  expect(`${(e as Error).message} ${JSON.stringify((e as BackendError).details)}`).not.toContain(TOKEN);
  return e as BackendError;
}

describe('Okta directory adapter', () => {
  it('finds users by short name with every page of their groups, and refuses look-alikes', async () => {
    okta.pageSize = 2; // three groups: two pages through Link rel="next"
    const u = await dir().get('jdoe', live());
    expect(u).toMatchObject({
      username: 'jdoe',
      displayName: 'Jane Doe',
      email: 'jdoe@northwind.example',
      groups: ['Everyone', 'staff', 'finance'],
      recovery: { kind: 'email', address: 'jdoe@northwind.example' },
      disabled: false,
    });
    expect(okta.seen.filter((s) => s.path.endsWith('/groups')).length).toBe(2);
    expect(await dir().get('nobody', live())).toBeUndefined();
    expect((await dir().get('gone', live()))?.disabled).toBe(true);
    expect(okta.seen.every((s) => s.authorization === `SSWS ${TOKEN}`)).toBe(true);
  });

  it('resets with sendEmail=true: Okta mails the link, the user is in RECOVERY, no link comes back', async () => {
    const r = await dir().resetByEmail('jdoe', { ...live(), requestId: 'req-1' });
    expect(r).toEqual({ address: 'jdoe@northwind.example' });
    expect(okta.mails).toHaveLength(1);
    expect(JSON.stringify(r)).not.toContain(okta.mails[0]!.link);
    expect(okta.seen.at(-1)!.query.get('sendEmail')).toBe('true');
    expect((await dir().get('jdoe', live()))?.mustChangePassword).toBe(true);
  });

  it('maps E0000006 to a permission error and E0000047 to a retryable rate-limit error', async () => {
    okta.denied.add('reset');
    const e = await rejection(dir().resetByEmail('jdoe', { ...live(), requestId: 'req-2' }));
    expect(e.retryable).toBe(false);
    expect(e.message).toContain('E0000006');
    expect(e.message).toMatch(/admin role lacks this permission/);
    expect(okta.mails).toHaveLength(0);

    const reset = String(Math.ceil(Date.now() / 1000) + 3600); // an hour away: past the call's deadline
    okta.failNext(1, {
      status: 429,
      headers: { 'x-rate-limit-remaining': '0', 'x-rate-limit-reset': reset },
      body: { errorCode: 'E0000047', errorSummary: 'API call exceeded rate limit due to too many requests.' },
    });
    const r = await rejection(dir().get('jdoe', live()));
    expect(r.retryable).toBe(true);
    expect(r.details).toMatchObject({ rate_limited: true });
    expect(r.message).toMatch(/E0000047: API call exceeded rate limit/);
    expect(okta.seen).toHaveLength(3); // lookup + reset, then the one refused; none sent while the bucket was spent
  });

  it('waits for X-Rate-Limit-Reset once the bucket is spent instead of hammering', async () => {
    okta.quota = { limit: 2, windowMs: 400, used: 0, resetAt: 0 };
    const d = dir();
    await d.get('jdoe', live()); // user + groups: the bucket is now empty
    const spentAt = Date.now();
    const u = await d.get('jdoe', live());
    expect(u?.username).toBe('jdoe');
    expect(okta.seen).toHaveLength(4);
    expect(Date.now() - spentAt).toBeGreaterThanOrEqual(200); // waited for the reset (second resolution)
    expect(okta.seen.some((s) => s.path === '/api/v1/users/jdoe' && okta.quota.used > okta.quota.limit)).toBe(false);
  });
});

describe('Okta factors adapter (push)', () => {
  const factors = () => new OktaFactors({ orgUrl: okta.url, apiToken: TOKEN, pollMs: 5 });
  it('sends a push and polls it to the user’s answer', async () => {
    const f = factors();
    expect(await f.enrolled('jdoe', live())).toBe(true);
    const c = await f.start('jdoe', live());
    expect(await f.poll(c, live())).toBe('WAITING');
    expect(await f.poll(c, live())).toBe('SUCCESS');
    const r = await f.start('rpatel', live());
    await f.poll(r, live());
    expect(await f.poll(r, live())).toBe('REJECTED');
    // No code is ever accepted with push factors.
    expect(await f.verify()).toEqual({ ok: false, why: 'no_factor' });
  });
});

/** The demo policy on the Okta directory and Okta Verify push, waiting 5 s for an answer. */
const OKTA_POLICY = () =>
  demoPolicy()
    .backend('directory', { kind: 'okta', org_url: okta.url, token_env: 'OKTA_TOKEN' })
    .backend('factors', { kind: 'okta' })
    .approvals({ wait_seconds: 5 });

describe('password_reset through a real MCP client with Okta', () => {
  const env = { OKTA_TOKEN: TOKEN };
  it('waits for the push on the user’s phone, then Okta mails them the link; nothing typed, no link returned', async () => {
    okta.users[0]!.after = 3;
    const app = testApp({ policy: OKTA_POLICY().parse(), env, cloud: { pushPollMs: 10 } });
    const c = await connect(app);
    try {
      const r = await c.call('password_reset', { user: 'jdoe', reason: 'locked out after too many attempts' });
      expect(textOf(r)).toContain('j***@northwind.example');
      expect(r.isError).toBeFalsy();
      expect(okta.pushes).toHaveLength(1);
      expect(okta.pushes[0]!.polls).toBeGreaterThanOrEqual(4);
      expect(okta.mails).toEqual([expect.objectContaining({ to: 'jdoe@northwind.example' })]);
      expect(JSON.stringify(r)).not.toContain(okta.mails[0]!.link);
      expect(JSON.stringify(r)).not.toContain(TOKEN);
      // A retry replays: no second push, no second mail.
      const again = await c.call('password_reset', { user: 'jdoe', reason: 'locked out after too many attempts' });
      expect(textOf(again)).toContain('Replay');
      expect(okta.pushes).toHaveLength(1);
      expect(okta.mails).toHaveLength(1);
    } finally {
      await c.close();
      app.close();
    }
  });

  it('a retry after the reset’s answer was lost reports the link Okta already mailed and mails no second one', async () => {
    const app = testApp({ policy: OKTA_POLICY().parse(), env, cloud: { pushPollMs: 10 }, log: silent });
    const c = await connect(app);
    const resets = () => okta.seen.filter((s) => s.path.endsWith('/lifecycle/reset_password'));
    try {
      const args = { user: 'jdoe', reason: 'locked out', idempotency_key: 'reset-jdoe-1' };
      // Okta resets and mails the link, but its answer never arrives.
      okta.loseNextAnswer(1, (s) => s.path.endsWith('/lifecycle/reset_password'));
      const first = await c.call('password_reset', args);
      expect(first.isError).toBe(true);
      expect(codeOf(first)).toBe('BACKEND_ERROR');
      expect(okta.mails).toHaveLength(1);
      expect(okta.users[0]!.status).toBe('RECOVERY');

      const again = await c.call('password_reset', args);
      expect(again.isError).toBeFalsy();
      expect(textOf(again)).toContain('A one-time reset link was sent to j***@northwind.example');
      expect(resets()).toHaveLength(1); // Okta was not asked to reset (and mail) again
      expect(okta.mails).toHaveLength(1);
      expect(app.sqlite.db.prepare('SELECT body FROM outbox').pluck().all()).toEqual([
        '[okta mailed its own one-time reset link (answer lost; not sent again); itguard never held it]',
      ]);
      // The third call replays the recorded outcome.
      expect(textOf(await c.call('password_reset', args))).toContain('Replay');
      expect(okta.mails).toHaveLength(1);
    } finally {
      await c.close();
      app.close();
    }
  });

  it('a retry after a reset Okta did not carry out (503: outcome unknown, user still ACTIVE) resets once', async () => {
    const app = testApp({ policy: OKTA_POLICY().parse(), env, cloud: { pushPollMs: 10 }, log: silent });
    const c = await connect(app);
    try {
      const args = { user: 'jdoe', reason: 'locked out', idempotency_key: 'reset-jdoe-2' };
      okta.failNext(1, { status: 503, body: { errorCode: 'E0000009', errorSummary: 'Internal Server Error' } }, (s) =>
        s.path.endsWith('/lifecycle/reset_password'),
      );
      const first = await c.call('password_reset', args);
      expect(codeOf(first)).toBe('BACKEND_ERROR');
      expect(okta.mails).toHaveLength(0);
      expect(okta.users[0]!.status).toBe('ACTIVE');

      const again = await c.call('password_reset', args);
      expect(again.isError).toBeFalsy();
      expect(okta.mails).toHaveLength(1);
      expect(okta.seen.filter((s) => s.path.endsWith('/lifecycle/reset_password'))).toHaveLength(2);
    } finally {
      await c.close();
      app.close();
    }
  });

  it('a rejected push is APPROVAL_DENIED and nothing is reset; denied groups are refused before any push', async () => {
    const app = testApp({ policy: OKTA_POLICY().parse(), env, cloud: { pushPollMs: 10 } });
    const c = await connect(app);
    try {
      const r = await c.call('password_reset', { user: 'rpatel', reason: 'forgot password' });
      expect(codeOf(r)).toBe('APPROVAL_DENIED');
      expect(textOf(r)).toMatch(/rejected the Okta Verify push/);
      expect(okta.mails).toHaveLength(0);
      expect(okta.users[3]!.status).toBe('ACTIVE');

      const admin = await c.call('password_reset', { user: 'root', reason: 'forgot password' });
      expect(codeOf(admin)).toBe('POLICY_DENIED');
      expect(okta.pushes.map((p) => p.user)).toEqual(['rpatel@northwind.example']);
    } finally {
      await c.close();
      app.close();
    }
  });

  it('a push answered after the wait: APPROVAL_PENDING, then the approval runs once; a timed-out push denies', async () => {
    okta.users[0]!.after = 4;
    const app = testApp({
      policy: OKTA_POLICY().approvals({ wait_seconds: 0 }).parse(),
      env,
      cloud: { pushPollMs: 10 },
    });
    const c = await connect(app);
    try {
      const r = await c.call('password_reset', { user: 'jdoe', reason: 'forgot password' });
      expect(codeOf(r)).toBe('APPROVAL_PENDING');
      const id = (r._meta!['itguard/error'] as { request_id: string }).request_id;
      expect(okta.mails).toHaveLength(0);
      await pushWatchers();
      expect(app.sqlite.approvals.get(id)!.status).toBe('approved');
      await app.executorPass();
      expect(app.sqlite.approvals.get(id)!.status).toBe('succeeded');
      expect(okta.mails).toHaveLength(1);
      const s = await c.call('request_status', { request_id: id });
      expect(textOf(s)).toMatch(/succeeded[\s\S]*jdoe \(Okta Verify\)/);
      expect(okta.pushes).toHaveLength(1);

      okta.users[1]!.answer = 'TIMEOUT';
      okta.users[1]!.groups = ['Everyone'];
      const t = await c.call('password_reset', { user: 'root', reason: 'forgot password' });
      expect(codeOf(t)).toBe('APPROVAL_PENDING');
      await pushWatchers();
      const tid = (t._meta!['itguard/error'] as { request_id: string }).request_id;
      expect(app.sqlite.approvals.get(tid)).toMatchObject({
        status: 'denied',
        note: expect.stringMatching(/did not answer/),
      });
      const again = await c.call('password_reset', { user: 'root', reason: 'forgot password' });
      expect(codeOf(again)).toBe('APPROVAL_DENIED');
      expect(okta.mails).toHaveLength(1);
    } finally {
      await c.close();
      app.close();
    }
  });

  it('works with another directory: the embedded directory with Okta push (found by e-mail)', async () => {
    const policy = demoPolicy()
      .backend('factors', { kind: 'okta', org_url: okta.url, token_env: 'OKTA_TOKEN' })
      .approvals({ wait_seconds: 5 })
      .parse();
    const app = testApp({ policy, env, cloud: { pushPollMs: 10 }, log: silent });
    const c = await connect(app);
    try {
      const r = await c.call('password_reset', { user: 'jdoe', reason: 'forgot password' });
      expect(r.isError).toBeFalsy();
      expect(okta.pushes).toEqual([expect.objectContaining({ user: 'jdoe@northwind.example' })]);
      // The embedded directory's own flow mailed its own link through the outbox; Okta mailed nothing.
      expect(okta.mails).toHaveLength(0);
      expect(textOf(r)).toContain('j***@example.com');
    } finally {
      await c.close();
      app.close();
    }
  });
});
