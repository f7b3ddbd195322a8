/**
 * The Jira Cloud adapter against a loopback Jira stand-in (test/helpers/jira-standin.ts): real HTTP, real ADF
 * validation, real auth, pagination, permissions, rate limits, a lagging search index and lost answers.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { BackendError } from '../../src/core/backend.js';
import type { NewTicket } from '../../src/core/ports/tickets.js';
import { adfFromText, textFromAdf } from '../../src/tools/tickets/jira-adf.js';
import { retryAfterMs } from '../../src/tools/tickets/jira-http.js';
import { jqlString, textTerms } from '../../src/tools/tickets/jira-map.js';
import { JiraTickets, type JiraConfig } from '../../src/tools/tickets/jira.js';
import { ALL_PERMISSIONS, JiraStandin, type StandinOptions } from '../helpers/jira-standin.js';

const EMAIL = 'itguard@example.com';
const TOKEN = 'ATATT3xFfGF0-super-secret-token-value';
const AUTH_B64 = Buffer.from(`${EMAIL}:${TOKEN}`).toString('base64');

let jira: JiraStandin;
const start = async (over: Partial<StandinOptions> = {}) => {
  jira = await JiraStandin.start({
    email: EMAIL,
    apiToken: TOKEN,
    projects: { IT: ALL_PERMISSIONS, HR: ALL_PERMISSIONS, RO: ['BROWSE_PROJECTS'], SECRET: [] },
    users: [
      { accountId: 'acc-jdoe', email: 'jdoe@example.com', displayName: 'Jane Doe' },
      { accountId: 'acc-asmith', email: 'asmith@example.com', displayName: 'Al Smith', hideEmail: true },
    ],
    ...over,
  });
};
beforeEach(() => start());
afterEach(() => jira.close());

const adapter = (over: Partial<JiraConfig> = {}) =>
  new JiraTickets({
    baseUrl: jira.url,
    email: EMAIL,
    apiToken: TOKEN,
    issueType: 'Task',
    retryBaseMs: 20,
    indexWaitMs: 1_500,
    timeoutMs: 5_000,
    ...over,
  });
const newTicket = (over: Partial<NewTicket> = {}): NewTicket => ({
  project: 'IT',
  summary: 'VPN drops every 5 minutes',
  description: 'Since Monday.\n\nGlobalProtect 6.1 on Windows 11.',
  requester: 'jdoe',
  requesterEmail: 'jdoe@example.com',
  priority: 'high',
  ...over,
});
const live = () => ({ signal: new AbortController().signal });
const inIT = () => ({ ...live(), projects: ['IT'] });
const write = (requestId: string) => ({ requestId, actor: 'helpdesk-agent', ...live() });

/** The rejection of p, which must be a BackendError that names no secret. */
async function rejection(p: Promise<unknown>): Promise<BackendError> {
  const e = await p.then(
    () => {
      throw new Error('expected a rejection');
    },
    (x: unknown) => x,
  );
  expect(e).toBeInstanceOf(BackendError);
  const text = `${(e as Error).message} ${JSON.stringify((e as BackendError).details)}`;
  expect(text).not.toContain(TOKEN);
  expect(text).not.toContain(AUTH_B64);
  return e as BackendError;
}

describe('Jira adapter: tickets round trip', () => {
  it('creates with ADF, the request label and property, reads back, comments and searches', async () => {
    const j = adapter();
    const { ticket, replayed } = await j.create(newTicket(), write('req-create-0001'));
    expect(replayed).toBe(false);
    expect(ticket).toMatchObject({ key: 'IT-1', project: 'IT', requester: 'jdoe', priority: 'high', status: 'open' });

    const stored = jira.issues[0]!;
    expect(stored.description).toEqual({
      type: 'doc',
      version: 1,
      content: [
        { type: 'paragraph', content: [{ type: 'text', text: 'Since Monday.' }] },
        { type: 'paragraph', content: [] },
        { type: 'paragraph', content: [{ type: 'text', text: 'GlobalProtect 6.1 on Windows 11.' }] },
      ],
    });
    const hash = stored.labels.find((l) => l.startsWith('itguard-req-'))!.slice('itguard-req-'.length);
    expect(hash).toMatch(/^[0-9a-f]{64}$/);
    expect(hash).not.toContain('req-create-0001');
    expect(stored.properties.get('itguard.request')).toEqual({ request_id_sha256: hash, actor: 'helpdesk-agent' });
    expect(stored.priority).toBe('High');

    const c = await j.comment('IT-1', 'Asked the user to update.\nThen reboot.', write('req-comment-0001'));
    expect(c).toMatchObject({ replayed: false, comment: { author: 'helpdesk-agent' } });

    const got = await j.get('IT-1', live());
    expect(got).toMatchObject({
      key: 'IT-1',
      summary: 'VPN drops every 5 minutes',
      description: 'Since Monday.\n\nGlobalProtect 6.1 on Windows 11.',
      requester: 'jdoe',
      createdBy: 'helpdesk-agent',
      status: 'open',
    });
    expect(got!.comments).toEqual([
      expect.objectContaining({
        id: c!.comment.id,
        author: 'helpdesk-agent',
        body: 'Asked the user to update.\nThen reboot.',
      }),
    ]);
    expect(Date.parse(got!.createdAt)).toBeGreaterThan(Date.now() - 60_000);

    const found = await j.search({ projects: ['IT'], text: 'globalprotect', limit: 10 }, live());
    expect(found.map((t) => t.key)).toEqual(['IT-1']);
  });

  it('flattens rich ADF written by people: lists, code, hardBreak, mentions, quotes', async () => {
    const doc = {
      type: 'doc',
      version: 1,
      content: [
        { type: 'heading', attrs: { level: 2 }, content: [{ type: 'text', text: 'Steps' }] },
        {
          type: 'paragraph',
          content: [
            { type: 'text', text: 'Hi ' },
            { type: 'mention', attrs: { id: 'acc-jdoe', text: '@Jane Doe' } },
            { type: 'hardBreak' },
            { type: 'text', text: 'see below', marks: [{ type: 'strong' }] },
          ],
        },
        {
          type: 'bulletList',
          content: [
            { type: 'listItem', content: [{ type: 'paragraph', content: [{ type: 'text', text: 'one' }] }] },
            {
              type: 'listItem',
              content: [
                { type: 'paragraph', content: [{ type: 'text', text: 'two' }] },
                {
                  type: 'orderedList',
                  attrs: { order: 3 },
                  content: [
                    { type: 'listItem', content: [{ type: 'paragraph', content: [{ type: 'text', text: 'nested' }] }] },
                  ],
                },
              ],
            },
          ],
        },
        {
          type: 'codeBlock',
          attrs: { language: 'sh' },
          content: [{ type: 'text', text: 'ipconfig /all\nping 10.0.0.1' }],
        },
        { type: 'blockquote', content: [{ type: 'paragraph', content: [{ type: 'text', text: 'quoted' }] }] },
        { type: 'rule' },
        {
          type: 'panel',
          attrs: { panelType: 'info' },
          content: [{ type: 'paragraph', content: [{ type: 'text', text: 'in a panel' }] }],
        },
      ],
    };
    // Written straight to the stand-in, as a person in the Jira UI would.
    const r = await fetch(`${jira.url}/rest/api/3/issue`, {
      method: 'POST',
      headers: { authorization: `Basic ${AUTH_B64}`, 'content-type': 'application/json' },
      body: JSON.stringify({
        fields: { project: { key: 'IT' }, summary: 'Rich', issuetype: { name: 'Task' }, description: doc },
      }),
    });
    expect(r.status).toBe(201);
    const got = await adapter().get('IT-1', live());
    expect(got!.description).toBe(
      [
        'Steps',
        'Hi @Jane Doe',
        'see below',
        '- one',
        '- two',
        '  3. nested',
        '```',
        'ipconfig /all',
        'ping 10.0.0.1',
        '```',
        '> quoted',
        '---',
        'in a panel',
      ].join('\n'),
    );
    expect(got!.requester).toBe('itguard'); // no requester label: the reporter's e-mail local part
    expect(textFromAdf(adfFromText('a\n\nb\r\nc'))).toBe('a\n\nb\nc');
    expect(textFromAdf(null)).toBe('');
  });

  it('the stand-in holds the real API to ADF: a plain-string description is a 400 naming the field', async () => {
    const r = await fetch(`${jira.url}/rest/api/3/issue`, {
      method: 'POST',
      headers: { authorization: `Basic ${AUTH_B64}`, 'content-type': 'application/json' },
      body: JSON.stringify({
        fields: { project: { key: 'IT' }, summary: 'x', issuetype: { name: 'Task' }, description: 'plain text' },
      }),
    });
    expect(r.status).toBe(400);
    expect(((await r.json()) as { errors: Record<string, string> }).errors).toHaveProperty('description');
    expect(jira.issues).toHaveLength(0);
  });
});

describe('Jira adapter: search', () => {
  it('ANDs the allowed projects into every JQL and never returns another project', async () => {
    const j = adapter();
    await j.create(newTicket({ summary: 'printer jam' }), write('req-it-00001'));
    await j.create(newTicket({ project: 'HR', summary: 'printer jam in HR' }), write('req-hr-00001'));
    jira.jqls.length = 0;
    const queries = [
      { projects: ['IT'], text: 'printer', limit: 10 },
      { projects: ['IT'], limit: 10 },
      { projects: ['IT'], status: 'open' as const, limit: 10 },
      { projects: ['IT'], requester: 'jdoe', limit: 10 },
      { projects: ['IT'], text: 'printer" OR project = HR OR text ~ "x', limit: 10 },
    ];
    for (const q of queries) {
      const found = await j.search(q, live());
      expect(found.every((t) => t.project === 'IT')).toBe(true);
    }
    expect(jira.jqls).toHaveLength(queries.length);
    for (const jql of jira.jqls) expect(jql).toMatch(/^project in \("IT"\) AND |^project in \("IT"\) ORDER BY/);
    // The injection attempt was searched as words, inside one quoted string.
    expect(jira.jqls[4]).toBe('project in ("IT") AND text ~ "printer OR project = HR OR text x" ORDER BY created DESC');
    await expect(j.search({ projects: [], limit: 5 }, live())).rejects.toThrow(/at least one allowed project/);
    expect(jqlString('a"b\\c\nd')).toBe('"a\\"b\\\\c\\nd"');
    expect(textTerms('*?:()')).toBe('');
  });

  it('pages with nextPageToken up to the limit, newest first', async () => {
    await jira.close();
    await start({ pageSize: 2 });
    const j = adapter();
    for (let i = 1; i <= 7; i++) await j.create(newTicket({ summary: `issue ${i}` }), write(`req-page-${i}-0000`));
    const before = jira.count('POST', /search\/jql$/);
    const five = await j.search({ projects: ['IT'], limit: 5 }, live());
    expect(five.map((t) => t.key)).toEqual(['IT-7', 'IT-6', 'IT-5', 'IT-4', 'IT-3']);
    const pages = jira.requests.filter((r) => r.path.endsWith('/search/jql')).slice(before);
    expect(pages).toHaveLength(3);
    expect(pages.map((p) => (p.body as { nextPageToken?: string }).nextPageToken !== undefined)).toEqual([
      false,
      true,
      true,
    ]);
    const all = await j.search({ projects: ['IT'], limit: 50 }, live());
    expect(all).toHaveLength(7);
  });

  it('maps Jira status categories to open / in_progress / resolved / closed, and searches by them', async () => {
    const j = adapter();
    for (let i = 1; i <= 4; i++) await j.create(newTicket({ summary: `s${i}` }), write(`req-status-${i}-00`));
    jira.transition('IT-2', 'In Progress', 'indeterminate');
    jira.transition('IT-3', 'Done', 'done');
    jira.transition('IT-4', 'Closed', 'done');
    const keys = async (status: 'open' | 'in_progress' | 'resolved' | 'closed') =>
      (await j.search({ projects: ['IT'], status, limit: 10 }, live())).map((t) => t.key);
    expect(await keys('open')).toEqual(['IT-1']);
    expect(await keys('in_progress')).toEqual(['IT-2']);
    expect(await keys('resolved')).toEqual(['IT-3']);
    expect(await keys('closed')).toEqual(['IT-4']);
    expect((await j.get('IT-4', live()))!.status).toBe('closed');
  });
});

describe('Jira adapter: requester → reporter', () => {
  it('maps the requester to the Jira reporter found by e-mail, and labels it', async () => {
    await adapter().create(newTicket(), write('req-reporter-01'));
    expect(jira.issues[0]).toMatchObject({ reporter: 'acc-jdoe' });
    expect(jira.issues[0]!.labels).toContain('requester-jdoe');
    expect(JSON.stringify(jira.issues[0]!.description)).not.toContain('Requester:');
  });

  it('takes the single account a full-address search returns when Jira hides its e-mail', async () => {
    await adapter().create(
      newTicket({ requester: 'asmith', requesterEmail: 'asmith@example.com' }),
      write('req-hidden-01'),
    );
    expect(jira.issues[0]!.reporter).toBe('acc-asmith');
  });

  it('without a matching account: a requester label and a line in the description; searchable by requester', async () => {
    const j = adapter();
    const { ticket } = await j.create(
      newTicket({ requester: 'ghost', requesterEmail: 'ghost@example.com' }),
      write('req-fallback-1'),
    );
    expect(jira.issues[0]!.reporter).toBe('svc-itguard');
    expect(jira.issues[0]!.labels).toContain('requester-ghost');
    expect(ticket.requester).toBe('ghost');
    expect(ticket.description).toMatch(/\nRequester: ghost <ghost@example.com> \(no matching Jira account/);
    const found = await j.search({ projects: ['IT'], requester: 'ghost', limit: 5 }, live());
    expect(found.map((t) => t.key)).toEqual(['IT-1']);
  });

  it('falls back to the description line when Jira refuses to set the reporter (400 errors.reporter)', async () => {
    await jira.close();
    await start({ reporterSettable: false });
    const { ticket } = await adapter().create(newTicket(), write('req-noreporter'));
    expect(ticket.key).toBe('IT-1');
    expect(jira.issues).toHaveLength(1);
    expect(jira.issues[0]!.reporter).toBe('svc-itguard');
    expect(ticket.description).toContain('Requester: jdoe <jdoe@example.com>');
  });
});

describe('Jira adapter: rate limits and retries', () => {
  it('honours Retry-After in seconds', async () => {
    jira.failNext(1, { retryAfter: '1' });
    const t0 = Date.now();
    const got = await adapter().search({ projects: ['IT'], limit: 5 }, live());
    expect(got).toEqual([]);
    expect(Date.now() - t0).toBeGreaterThanOrEqual(950);
    expect(jira.count('POST', /search\/jql$/)).toBe(2);
  });

  it('honours Retry-After as an HTTP date on 503', async () => {
    // HTTP dates have 1 s resolution: a whole second at least 600 ms away.
    const at = Math.ceil((Date.now() + 600) / 1000) * 1000;
    jira.failNext(1, { status: 503, retryAfter: new Date(at).toUTCString() });
    await adapter().search({ projects: ['IT'], limit: 5 }, live());
    expect(Date.now()).toBeGreaterThanOrEqual(at - 50);
    expect(jira.count('POST', /search\/jql$/)).toBe(2);
    expect(retryAfterMs('120')).toBe(120_000);
    expect(retryAfterMs('Wed, 21 Oct 2015 07:28:00 GMT', Date.parse('2015-10-21T07:27:00Z'))).toBe(60_000);
    expect(retryAfterMs('soon')).toBeUndefined();
  });

  it('without Retry-After backs off with jitter and then succeeds, even for a create', async () => {
    jira.failNext(3);
    const { ticket } = await adapter().create(newTicket(), write('req-backoff-01'));
    expect(ticket.key).toBe('IT-1');
    expect(jira.issues).toHaveLength(1);
  });

  it('gives up as retryable within the call timeout', async () => {
    jira.failNext(10_000);
    const t0 = Date.now();
    const e = await rejection(
      adapter({ timeoutMs: 700, retryBaseMs: 100, maxRetries: 1_000 }).search({ projects: ['IT'], limit: 5 }, live()),
    );
    expect(Date.now() - t0).toBeLessThan(1_000);
    expect(e.retryable).toBe(true);
    expect(e.message).toMatch(/rate limit|in time|within/);
  });

  it('gives up at once, retryable with retry_after_s, when Retry-After is beyond the deadline', async () => {
    jira.failNext(1, { retryAfter: '30' });
    const t0 = Date.now();
    const e = await rejection(adapter().search({ projects: ['IT'], limit: 5 }, live()));
    expect(Date.now() - t0).toBeLessThan(500);
    expect(e).toMatchObject({ retryable: true, details: { status: 429, retry_after_s: 30 } });
    expect(e.details.rate_limit_reason).toBe('jira-quota-tenant-based');
  });

  it('stops at once when the caller aborts, even mid-wait', async () => {
    jira.failNext(1, { retryAfter: '3' });
    const ac = new AbortController();
    setTimeout(() => ac.abort(), 100);
    const t0 = Date.now();
    const e = await rejection(adapter().get('IT-1', { signal: ac.signal }));
    expect(Date.now() - t0).toBeLessThan(1_000);
    expect(e.details.aborted).toBe(true);
    const pre = new AbortController();
    pre.abort();
    const e2 = await rejection(adapter().create(newTicket(), { ...write('req-aborted-01'), signal: pre.signal }));
    expect(e2.details.aborted).toBe(true);
    expect(jira.issues).toHaveLength(0);
  });
});

describe('Jira adapter: refusals', () => {
  it('401 is a non-retryable auth error that never shows the token', async () => {
    const e = await rejection(adapter({ apiToken: 'wrong-token-value' }).get('IT-1', live()));
    expect(e.retryable).toBe(false);
    expect(e.message).toMatch(/credentials.*authentication|authentication/);
    expect(e.message).not.toContain('wrong-token-value');
  });

  it('403 is a non-retryable permission error', async () => {
    const e = await rejection(adapter().create(newTicket({ project: 'RO' }), write('req-forbidden')));
    expect(e).toMatchObject({ retryable: false, details: { status: 403, reason: 'permission' } });
    expect(e.message).toMatch(/permission/);
    await adapter().create(newTicket(), write('req-for-comment'));
    jira.issues[0]!.project = 'RO'; // readable, not commentable
    const c = await rejection(adapter().comment('IT-1', 'hello', write('req-comment-ro')));
    expect(c.message).toMatch(/permission/);
  });

  it('404 reads as undefined for get and comment (unknown keys and projects the account cannot browse)', async () => {
    const j = adapter();
    expect(await j.get('IT-999', live())).toBeUndefined();
    expect(await j.comment('IT-999', 'hello', write('req-comment-404'))).toBeUndefined();
    expect(await j.get('not a key', live())).toBeUndefined();
    await j.create(newTicket(), write('req-secret-01'));
    jira.issues[0]!.project = 'SECRET';
    expect(await j.get('IT-1', live())).toBeUndefined();
  });

  it('400 field errors name the fields', async () => {
    const e = await rejection(adapter({ issueType: 'Epic' }).create(newTicket(), write('req-badtype-01')));
    expect(e).toMatchObject({ retryable: false, details: { status: 400, fields: ['issuetype'] } });
    expect(e.message).toMatch(/field\(s\) issuetype/);
    expect(jira.issues).toHaveLength(0);
  });

  it('refuses plain http to a non-loopback host and credentials in the URL', () => {
    const cfg = { email: EMAIL, apiToken: TOKEN, issueType: 'Task' };
    expect(() => new JiraTickets({ ...cfg, baseUrl: 'http://jira.example.com' })).toThrow(/https/);
    expect(() => new JiraTickets({ ...cfg, baseUrl: 'https://u:p@x.atlassian.net' })).toThrow(/credentials/);
    expect(() => new JiraTickets({ ...cfg, baseUrl: 'http://localhost:8080/jira' })).not.toThrow();
    try {
      new JiraTickets({ ...cfg, apiToken: '', baseUrl: 'https://x.atlassian.net' });
    } catch (e) {
      expect(String(e)).not.toContain(TOKEN);
    }
  });
});

describe('Jira adapter: unknown outcomes and the lagging index', () => {
  it('a dropped create answer: waits for the index, finds the issue, never creates a second one', async () => {
    jira.indexLagMs = 800;
    jira.dropNext('create');
    const j = adapter({ indexWaitMs: 3_000 });
    const { ticket, replayed } = await j.create(newTicket(), write('req-dropped-01'));
    expect(ticket.key).toBe('IT-1');
    expect(replayed).toBe(false);
    expect(jira.issues).toHaveLength(1);
    expect(jira.count('POST', /\/rest\/api\/3\/issue$/)).toBe(1);
    // A retry with the same request id replays it.
    const again = await j.create(newTicket(), write('req-dropped-01'));
    expect(again).toMatchObject({ replayed: true, ticket: { key: 'IT-1' } });
    expect(jira.count('POST', /\/rest\/api\/3\/issue$/)).toBe(1);
  });

  it('an outcome that stays unknown is retryable with outcome_unknown, until findByRequest sees the issue', async () => {
    jira.indexLagMs = 2_500;
    jira.dropNext('create');
    const j = adapter({ indexWaitMs: 300 });
    const t0 = Date.now();
    const e = await rejection(j.create(newTicket(), write('req-unknown-01')));
    expect(e).toMatchObject({ retryable: true, details: { outcome_unknown: true } });
    // Retried at once: still unknown, and not sent again.
    const e2 = await rejection(j.create(newTicket(), write('req-unknown-01')));
    expect(e2.details.outcome_unknown).toBe(true);
    const e3 = await rejection(j.findByRequest('req-unknown-01', inIT()));
    expect(e3).toMatchObject({ retryable: true, details: { outcome_unknown: true } });
    expect(Date.now() - t0).toBeLessThan(2_500);
    expect(jira.count('POST', /\/rest\/api\/3\/issue$/)).toBe(1);

    // The index catches up (as it would after indexLagMs), instead of sleeping until it does.
    jira.catchUpIndex();
    expect(await j.findByRequest('req-unknown-01', inIT())).toEqual({ kind: 'ticket', key: 'IT-1' });
    expect(await j.create(newTicket(), write('req-unknown-01'))).toMatchObject({ replayed: true });
    expect(jira.issues).toHaveLength(1);
    expect(jira.count('POST', /\/rest\/api\/3\/issue$/)).toBe(1);
  });

  it('findByRequest of a request that never ran is undefined after the bounded wait', async () => {
    const t0 = Date.now();
    expect(await adapter({ indexWaitMs: 300 }).findByRequest('req-never-ran', inIT())).toBeUndefined();
    expect(Date.now() - t0).toBeLessThan(1_500);
  });

  it('every JQL is confined to the allowed projects: an issue elsewhere with the request’s label is not taken', async () => {
    const j = adapter({ indexWaitMs: 0 });
    // An issue in HR carries the label and property of request req-elsewhere (made there, or copied there).
    await j.create(newTicket({ project: 'HR' }), write('req-elsewhere'));
    expect(jira.issues.map((i) => i.key)).toEqual(['HR-1']);
    // The same request id creating in IT makes its own issue rather than answering with HR-1.
    const made = await j.create(newTicket(), write('req-elsewhere'));
    expect(made).toMatchObject({ replayed: false, ticket: { key: 'IT-1', project: 'IT' } });
    expect(await j.findByRequest('req-elsewhere', { ...live(), projects: ['IT'] })).toEqual({
      kind: 'ticket',
      key: 'IT-1',
    });
    jira.issues.splice(1); // only HR-1 is left
    expect(await j.findByRequest('req-elsewhere', { ...live(), projects: ['IT'] })).toBeUndefined();
    expect(jira.jqls.length).toBeGreaterThan(0);
    for (const jql of jira.jqls) expect(jql).toMatch(/^project in \(/);
    await expect(j.findByRequest('req-elsewhere', { ...live(), projects: [] })).rejects.toMatchObject({
      retryable: false,
    });
  });

  it('a hand-copied request label without the property is not taken for the request', async () => {
    const j = adapter({ indexWaitMs: 0 });
    await j.create(newTicket(), write('req-original-1'));
    jira.issues[0]!.properties.clear();
    expect(await j.findByRequest('req-original-1', inIT())).toBeUndefined();
  });
});

describe('Jira adapter: comment idempotency', () => {
  it('a repeated comment with the same request id replays, by the comment property', async () => {
    const j = adapter();
    await j.create(newTicket(), write('req-c-create'));
    const a = await j.comment('IT-1', 'first', write('req-c-0001'));
    const b = await j.comment('IT-1', 'first', write('req-c-0001'));
    expect(b).toEqual({ comment: a!.comment, replayed: true });
    expect(jira.issues[0]!.comments).toHaveLength(1);
    // The marker is a property, not text: the comment reads exactly as written.
    expect(jira.issues[0]!.comments[0]!.body).toEqual(adfFromText('first'));
    // A new adapter (another process) finds it too: the property lives in Jira.
    const c = await adapter().comment('IT-1', 'first', write('req-c-0001'));
    expect(c!.replayed).toBe(true);
    expect(jira.issues[0]!.comments).toHaveLength(1);
  });

  it('a dropped comment answer is found on the issue, not posted twice; findByRequest reports it', async () => {
    const j = adapter();
    await j.create(newTicket(), write('req-c-create2'));
    jira.dropNext('comment');
    const r = await j.comment('IT-1', 'are you still affected?', write('req-c-drop'));
    expect(r).toMatchObject({ replayed: false, comment: { body: 'are you still affected?' } });
    expect(jira.issues[0]!.comments).toHaveLength(1);
    expect(jira.count('POST', /\/comment$/)).toBe(1);
    expect(await j.findByRequest('req-c-drop', inIT())).toEqual({
      kind: 'comment',
      key: 'IT-1',
      commentId: r!.comment.id,
    });
    // After a restart, with the issue as a hint.
    expect(await adapter().findByRequest('req-c-drop', { ...inIT(), key: 'IT-1' })).toMatchObject({ kind: 'comment' });
  });
});

describe('Jira adapter: probe', () => {
  it('reports auth and per-project permissions, changing nothing', async () => {
    const rep = await adapter().probe({ ...live(), projects: ['IT', 'RO', 'NOPE'] });
    expect(rep.ok).toBe(false);
    expect(rep.backend).toBe('jira');
    const by = Object.fromEntries(rep.checks.map((c) => [c.name, c.ok]));
    expect(by).toMatchObject({
      auth: true,
      'IT: BROWSE_PROJECTS': true,
      'IT: CREATE_ISSUES': true,
      'IT: ADD_COMMENTS': true,
      'RO: BROWSE_PROJECTS': true,
      'RO: CREATE_ISSUES': false,
      'RO: ADD_COMMENTS': false,
      'project NOPE': false,
    });
    expect((await adapter().probe({ ...live(), projects: ['IT'] })).ok).toBe(true);
    expect(jira.requests.every((r) => r.method === 'GET')).toBe(true);
    expect(jira.issues).toHaveLength(0);
  });

  it('a bad token fails the auth check without showing the token', async () => {
    const rep = await adapter({ apiToken: 'nope-nope-nope' }).probe({ ...live(), projects: ['IT'] });
    expect(rep.ok).toBe(false);
    expect(rep.checks).toEqual([expect.objectContaining({ name: 'auth', ok: false })]);
    expect(JSON.stringify(rep)).not.toContain('nope-nope-nope');
  });
});
