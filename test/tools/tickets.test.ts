import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import type { SqliteApp as App } from '../../src/app.js';
import { codeOf, connect, testApp, textOf } from '../helpers/harness.js';

let app: App;
let c: Awaited<ReturnType<typeof connect>>;
beforeAll(() => {
  app = testApp();
});
// A fresh MCP session per test: refusals count toward the session's loop breaker.
beforeEach(async () => {
  c = await connect(app);
});
afterAll(() => app.close());

const reason = 'user reported it in chat';

describe('tickets', () => {
  it('creates IT-n and reads it back with comments', async () => {
    const r = await c.call('ticket_create', {
      summary: 'VPN drops every 5 minutes',
      description: 'Since Monday.',
      requester: 'jdoe',
      reason,
    });
    expect(r.isError).toBeFalsy();
    const key = (r.structuredContent as { key: string }).key;
    expect(key).toMatch(/^IT-\d+$/);
    const cm = await c.call('ticket_comment', { key, body: 'Asked the user to update GlobalProtect.', reason });
    expect(cm.isError).toBeFalsy();
    const g = await c.call('ticket_get', { key });
    expect(g.isError).toBeFalsy();
    const t = (
      g.structuredContent as { ticket: { summary: string; requester: string; status: string; comments: unknown[] } }
    ).ticket;
    expect(t).toMatchObject({ summary: 'VPN drops every 5 minutes', requester: 'jdoe', status: 'open' });
    expect(t.comments).toHaveLength(1);
    expect(textOf(g)).toMatch(/<untrusted-data-[0-9a-f]{8} source="ticket IT-\d+">/);
  });

  it('numbers tickets consecutively', async () => {
    const a = await c.call('ticket_create', { summary: 'Printer jam 3F', requester: 'asmith', reason });
    const b = await c.call('ticket_create', { summary: 'Printer jam 4F', requester: 'asmith', reason });
    const n = (r: typeof a) => Number((r.structuredContent as { key: string }).key.split('-')[1]);
    expect(n(b)).toBe(n(a) + 1);
  });

  it('searches by text, status and requester', async () => {
    const r = await c.call('ticket_search', { text: 'Printer', requester: 'asmith' });
    const found = (r.structuredContent as { tickets: { requester: string }[] }).tickets;
    expect(found.length).toBe(2);
    expect(found.every((t) => t.requester === 'asmith')).toBe(true);
    const none = await c.call('ticket_search', { status: 'closed' });
    expect((none.structuredContent as { tickets: unknown[] }).tickets).toHaveLength(0);
  });

  it('refuses an unknown requester and a disabled one', async () => {
    const r = await c.call('ticket_create', { summary: 'x', requester: 'nobody', reason });
    expect(codeOf(r)).toBe('INVALID_ARGUMENT');
    expect(textOf(r)).toMatch(/requester: no user "nobody"/);
    const d = (await app.embedded.directory.list()).find((u) => u.disabled)!;
    const r2 = await c.call('ticket_create', { summary: 'x', requester: d.username, reason });
    expect(codeOf(r2)).toBe('POLICY_DENIED');
  });

  it('requires reason on writes and validates the idempotency key format', async () => {
    const r = await c.call('ticket_create', { summary: 'x', requester: 'jdoe' });
    expect(textOf(r)).toMatch(/reason: required/);
    const r2 = await c.call('ticket_create', { summary: 'x', requester: 'jdoe', reason, idempotency_key: 'bad key!' });
    expect(textOf(r2)).toMatch(/idempotency_key: must be 8\.\.255 characters/);
  });

  it('never shows tickets outside allowed_projects', async () => {
    app.sqlite.db
      .prepare(
        `INSERT INTO tickets (key, project, number, summary, description, requester, priority, status, created_by, created_at, updated_at)
         VALUES ('HR-1', 'HR', 1, 'Salary letter Printer', 'secret hr matter', 'jdoe', 'low', 'open', 'x', 0, 0)`,
      )
      .run();
    const g = await c.call('ticket_get', { key: 'HR-1' });
    expect(codeOf(g)).toBe('NOT_FOUND');
    const s = await c.call('ticket_search', { text: 'Printer' });
    expect(JSON.stringify(s)).not.toContain('HR-1');
    const cm = await c.call('ticket_comment', { key: 'HR-1', body: 'hi', reason });
    expect(codeOf(cm)).toBe('NOT_FOUND');
  });

  it('NOT_FOUND for a missing ticket', async () => {
    expect(codeOf(await c.call('ticket_get', { key: 'IT-99999' }))).toBe('NOT_FOUND');
  });
});
