/**
 * The rules above the ports, whatever adapter is behind them: a failed SMTP delivery is a retryable
 * BACKEND_ERROR and nothing is reported as sent; ticket confinement holds even when an adapter returns a ticket
 * of another project; backend configuration mistakes name the policy key; factors are not tied to the embedded
 * directory.
 */
import type { AddressInfo } from 'node:net';
import { ElicitRequestSchema } from '@modelcontextprotocol/sdk/types.js';
import { SMTPServer } from 'smtp-server';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { openApp, type SqliteApp as App } from '../../src/app.js';
import { ConfigError } from '../../src/config.js';
import { PolicyError } from '../../src/policy/load.js';
import type { Ticket, TicketsPort } from '../../src/core/ports/tickets.js';
import { codeOf, connect, policyWith, silent, testApp, textOf } from '../helpers/harness.js';

const reason = 'user asked in chat';

interface Mail {
  to: string[];
  raw: string;
}

let smtp: SMTPServer;
let smtpPort = 0;
const mails: Mail[] = [];
/** While set, the relay answers RCPT TO with this temporary failure. */
let refuse: string | undefined;

beforeAll(async () => {
  smtp = new SMTPServer({
    authOptional: true,
    disabledCommands: ['STARTTLS'],
    logger: false,
    onRcptTo(addr, _s, cb) {
      if (refuse) {
        const e = new Error(refuse) as Error & { responseCode: number };
        e.responseCode = 451;
        return cb(e);
      }
      cb();
    },
    onData(stream, session, cb) {
      let raw = '';
      stream.on('data', (d: Buffer) => (raw += d.toString('utf8')));
      stream.on('end', () => {
        mails.push({ to: session.envelope.rcptTo.map((r) => r.address), raw });
        cb();
      });
    },
  });
  await new Promise<void>((r) => smtp.listen(0, '127.0.0.1', r));
  smtpPort = (smtp.server.address() as AddressInfo).port;
});
afterAll(() => new Promise<void>((r) => smtp.close(() => r())));

let apps: App[] = [];
afterEach(() => {
  for (const a of apps) a.close();
  apps = [];
  mails.length = 0;
  refuse = undefined;
});

/** The demo policy with its backends block replaced (lines indented two spaces). */
const withBackends = (block: string) =>
  policyWith((y) => y.replace(/^backends:\n(?: {2}.*\n)*/m, `backends:\n${block.replace(/\n?$/, '\n')}`));
const SMTP_BACKENDS =
  '  outbox: { kind: smtp, url_env: TEST_SMTP_URL, from: it-helpdesk@example.com, require_tls: false }';

/** The policy's clock: advanced by tests so the next TOTP step (a new code) arrives without waiting. */
let clock = Date.now();
function smtpApp(): App {
  clock = Date.now();
  const app = openApp({
    now: () => clock,
    dbPath: ':memory:',
    policy: withBackends(SMTP_BACKENDS),
    log: silent,
    env: { TEST_SMTP_URL: `smtp://127.0.0.1:${smtpPort}` },
  });
  apps.push(app);
  return app;
}

/** A form-mode client that answers the MFA form with the target user's current code. */
async function formClient(app: App, user: string) {
  const c = await connect(app, 'helpdesk-agent', { elicitation: { form: {} } });
  c.client.setRequestHandler(ElicitRequestSchema, async () => ({
    action: 'accept',
    content: { code: app.sqlite.mfa.currentCode(user)! },
  }));
  return c;
}

describe('SMTP outbox behind password_reset', () => {
  it('delivers the reset link by mail and records it masked; no link in the result, the record or the audit', async () => {
    const app = smtpApp();
    const c = await formClient(app, 'dkim');
    const r = await c.call('password_reset', { user: 'dkim', reason, idempotency_key: 'reset-dkim-0001' });
    expect(r.isError).toBeFalsy();
    expect(textOf(r)).toMatch(/reset link was sent to d\*\*\*@example\.com/);
    expect(mails).toHaveLength(1);
    expect(mails[0]!.to).toEqual(['david.kim@example.com']);
    const link = /https?:\/\/\S+\/reset\/[A-Za-z0-9_-]+/.exec(mails[0]!.raw.replace(/=\r?\n/g, ''))?.[0];
    expect(link).toBeDefined();
    const token = link!.split('/reset/')[1]!;
    const rec = (await app.embedded.deliveries.byRequest((await app.embedded.deliveries.list(1))[0]!.requestId!))!;
    expect(rec).toMatchObject({ username: 'dkim', via: 'smtp', address: 'david.kim@example.com' });
    expect(rec.body).toContain('[one-time link delivered; not kept]');
    expect(rec.body).not.toContain(token);
    expect(JSON.stringify(app.sqlite.auditStore.tail(1000))).not.toContain(token);
    expect(JSON.stringify(r)).not.toContain(token);
    // The link the user got works on the reset page's view.
    expect(await app.backends.resets.link(token)).toMatchObject({ username: 'dkim', usable: true });
    await c.close();
  });

  it('a failed delivery is a retryable BACKEND_ERROR: not reported as sent, its link revoked; the retry delivers once', async () => {
    const app = smtpApp();
    const c = await formClient(app, 'mrossi');
    refuse = 'mailbox temporarily unavailable';
    const args = { user: 'mrossi', reason, idempotency_key: 'reset-mrossi-0001' };
    const r1 = await c.call('password_reset', args);
    expect(codeOf(r1)).toBe('BACKEND_ERROR');
    expect(r1._meta?.['itguard/error']).toMatchObject({ retryable: true });
    expect(textOf(r1)).not.toMatch(/sent to/);
    expect(await app.embedded.deliveries.forUser('mrossi')).toHaveLength(0);
    expect(mails).toHaveLength(0);

    refuse = undefined;
    clock += 30_000; // the code accepted for the first try is never accepted again: the user types the next one
    const r2 = await c.call('password_reset', args);
    expect(r2.isError).toBeFalsy();
    expect(textOf(r2)).toMatch(/sent to m\*\*\*@example\.net/);
    const r3 = await c.call('password_reset', args);
    expect(textOf(r3)).toMatch(/sent to m\*\*\*@example\.net/);
    expect(mails).toHaveLength(1);
    expect(
      (await app.embedded.deliveries.forUser('mrossi')).filter((m) => m.subject.includes('password reset')),
    ).toHaveLength(1);
    await c.close();
  });

  it('refuses a user whose SMS recovery channel the SMTP outbox cannot reach, before any prompt or change', async () => {
    const app = smtpApp();
    const sms = (await app.embedded.directory.list()).find(
      (u) => u.recovery.kind === 'sms' && !u.disabled && !u.groups.includes('admins'),
    )!;
    const c = await connect(app, 'helpdesk-agent', { elicitation: { form: {} } });
    let asked = 0;
    c.client.setRequestHandler(ElicitRequestSchema, async () => (asked++, { action: 'decline' }));
    const r = await c.call('password_reset', { user: sms.username, reason });
    expect(codeOf(r)).toBe('POLICY_DENIED');
    expect(textOf(r)).toMatch(/recovery channel is sms, which the smtp outbox cannot reach/);
    expect(asked).toBe(0);
    expect(mails).toHaveLength(0);
    expect((await app.embedded.directory.user(sms.username))!.mustChangePassword).toBe(false);
    await c.close();
  });
});

describe('ticket confinement above the adapter', () => {
  /** An adapter that answers with a ticket of another project (Jira follows a moved issue's old key). */
  function leakyTickets(inner: TicketsPort): TicketsPort {
    const foreign = (t: Ticket): Ticket => ({ ...t, project: 'HR', key: t.key.replace(/^IT-/, 'HR-') });
    return {
      ...inner,
      kind: 'leaky',
      create: (t, o) => inner.create(t, o),
      comment: (k, b, o) => inner.comment(k, b, o),
      findByRequest: (id, o) => inner.findByRequest(id, o),
      probe: (o) => inner.probe(o),
      get: async (key, o) => {
        const t = await inner.get(key, o);
        return t && { ...foreign(t), comments: t.comments };
      },
      search: async (q, o) => [...(await inner.search(q, o)), ...(await inner.search(q, o)).map(foreign)],
    };
  }

  it('a ticket the adapter returns from outside allowed_projects reads as NOT_FOUND and is never commented on', async () => {
    const app = testApp();
    apps.push(app);
    const inner = app.backends.tickets;
    Object.defineProperty(app.backends, 'tickets', { value: leakyTickets(inner) });
    const c = await connect(app);
    const made = await c.call('ticket_create', { summary: 'Printer jams', requester: 'dkim', reason });
    expect((made.structuredContent as { key: string }).key).toBe('IT-1');
    const get = await c.call('ticket_get', { key: 'IT-1' });
    expect(codeOf(get)).toBe('NOT_FOUND');
    const before = await app.embedded.tickets.count();
    const com = await c.call('ticket_comment', { key: 'IT-1', body: 'hello', reason });
    expect(codeOf(com)).toBe('NOT_FOUND');
    const search = await c.call('ticket_search', { limit: 50 });
    const keys = (search.structuredContent as { tickets: { key: string; project: string }[] }).tickets;
    expect(keys.length).toBeGreaterThan(0);
    expect(keys.every((t) => t.project === 'IT')).toBe(true);
    expect(await app.embedded.tickets.count()).toBe(before);
    expect(
      (await app.embedded.tickets.get('IT-1', { signal: new AbortController().signal }))!.comments.some(
        (x) => x.body === 'hello',
      ),
    ).toBe(false);
    await c.close();
  });

  it('a key of a project outside allowed_projects is NOT_FOUND before the backend is asked', async () => {
    const app = testApp();
    apps.push(app);
    let asked = 0;
    const inner = app.backends.tickets;
    Object.defineProperty(app.backends, 'tickets', {
      value: { ...inner, kind: 'counting', get: (k: string, o: { signal: AbortSignal }) => (asked++, inner.get(k, o)) },
    });
    const c = await connect(app);
    expect(codeOf(await c.call('ticket_get', { key: 'HR-1' }))).toBe('NOT_FOUND');
    expect(codeOf(await c.call('ticket_comment', { key: 'HR-1', body: 'x', reason }))).toBe('NOT_FOUND');
    expect(asked).toBe(0);
    await c.close();
  });
});

describe('backend configuration', () => {
  it('a missing secret stops the server at start, naming the policy key and the variable', () => {
    expect(() => openApp({ dbPath: ':memory:', policy: withBackends(SMTP_BACKENDS), log: silent, env: {} })).toThrow(
      new ConfigError('backends.outbox.url_env: environment variable TEST_SMTP_URL is not set'),
    );
  });

  it('plain LDAP to a non-loopback host is refused at start, naming the key', () => {
    const policy = withBackends(
      '  directory: { kind: ldap, url: "ldap://ldap.example.com", bind_dn: "cn=itguard,dc=example,dc=com", password_env: P, base_dn: "dc=example,dc=com" }',
    );
    expect(() => openApp({ dbPath: ':memory:', policy, log: silent, env: { P: 'x' } })).toThrow(
      /^backends\.directory: .*loopback/,
    );
  });

  it('the policy names bad backend keys by path', () => {
    const bad = (b: string) => () => withBackends(b);
    expect(bad('  tickets: { kind: servicenow }')).toThrow(PolicyError);
    expect(bad('  tickets: { kind: servicenow }')).toThrow(/backends\.tickets\.kind/);
    expect(bad('  tickets: { kind: jira, base_url: "https://x.atlassian.net", token_env: T }')).toThrow(
      /backends\.tickets\.email: give exactly one of email and email_env/,
    );
    expect(bad('  outbox: { kind: smtp, url_env: "smtp://user:secret@relay", from: a@b.c }')).toThrow(
      /backends\.outbox\.url_env: expected an environment variable name/,
    );
    expect(
      bad('  directory: { kind: ldap, url: "ldaps://x", bind_dn: "cn=a", password_env: P, base_dn: "dc=x", extra: 1 }'),
    ).toThrow(/backends\.directory/);
  });
});

describe('factors keyed by username', () => {
  it('a user who exists only in another directory can be enrolled and verified (no tie to the embedded directory)', async () => {
    const app = testApp();
    apps.push(app);
    expect(await app.embedded.directory.user('ldap.only')).toBeUndefined();
    const uri = await app.backends.factors.enroll('ldap.only');
    expect(uri).toMatch(/^otpauth:\/\/totp\//);
    const code = app.sqlite.mfa.currentCode('ldap.only')!;
    expect(await app.backends.factors.verify('ldap.only', code, { signal: AbortSignal.timeout(1000) })).toEqual({
      ok: true,
    });
    // The same code is never accepted twice.
    expect(await app.backends.factors.verify('ldap.only', code, { signal: AbortSignal.timeout(1000) })).toMatchObject({
      ok: false,
      why: 'replayed',
    });
  });
});
