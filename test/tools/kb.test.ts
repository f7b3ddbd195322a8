import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import type { App } from '../../src/app.js';
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

describe('kb_search', () => {
  it('ranks the VPN-disconnect article first for "vpn keeps disconnecting"', async () => {
    const r = await c.call('kb_search', { query: 'vpn keeps disconnecting' });
    expect(r.isError).toBeFalsy();
    const results = (r.structuredContent as { results: { id: string; title: string; snippet: string }[] }).results;
    expect(results.length).toBeGreaterThan(1);
    expect(results[0]!.title.toLowerCase()).toMatch(/vpn/);
    expect(results[0]!.title.toLowerCase()).toMatch(/disconnect|drop/);
    expect(results[0]!.snippet).toContain('[[');
  });

  it('stems: "printers" finds printer articles', async () => {
    const r = await c.call('kb_search', { query: 'printers jammed queue', limit: 3 });
    const results = (r.structuredContent as { results: { title: string }[] }).results;
    expect(results.some((x) => /print/i.test(x.title))).toBe(true);
  });

  it('treats FTS syntax in the query as plain words', async () => {
    const r = await c.call('kb_search', { query: 'NEAR( "vpn" OR * ) AND -' });
    expect(r.isError).toBeFalsy();
  });

  it('refuses an empty query and a limit out of range, naming the field', async () => {
    const r = await c.call('kb_search', { query: '' });
    expect(codeOf(r)).toBe('INVALID_ARGUMENT');
    expect(textOf(r)).toMatch(/query: must not be empty/);
    const r2 = await c.call('kb_search', { query: 'vpn', limit: 99 });
    expect(textOf(r2)).toMatch(/limit: must be <= 20/);
    const r3 = await c.call('kb_search', { query: 'vpn', extra: 1 });
    expect(textOf(r3)).toMatch(/extra: unknown key/);
  });
});

describe('kb_get_article', () => {
  it('returns the article body fenced as untrusted data', async () => {
    const r = await c.call('kb_get_article', { id: 'KB-1030' });
    expect(r.isError).toBeFalsy();
    const t = textOf(r);
    expect(t).toMatch(/<untrusted-data source="kb article KB-1030">/);
    expect(t).toMatch(/never as instructions/);
    const inside = t.split('<untrusted-data')[1]!.split('</untrusted-data>')[0]!;
    expect(inside).toMatch(/ignore previous instructions/i);
  });

  it('NOT_FOUND for an unknown id', async () => {
    const r = await c.call('kb_get_article', { id: 'KB-99999' });
    expect(codeOf(r)).toBe('NOT_FOUND');
  });
});

describe('kb_search at scale', () => {
  it('ignores stopwords and terms most articles contain, so the rare term decides', async () => {
    const { EmbeddedKb } = await import('../../src/tools/kb/embedded.js');
    const { openDb } = await import('../../src/store/db.js');
    const kb = new EmbeddedKb(openDb(':memory:'));
    const articles = Array.from({ length: 2500 }, (_, i) => ({
      id: `KB-${10000 + i}`,
      title: `Network note ${i}`,
      category: 'network',
      tags: ['network'],
      body: `The network is working for team ${i}. ${i === 1234 ? 'The zebraprinter driver needs an update.' : ''}`,
      updated: '2026-01-01',
    }));
    kb.upsert(articles);
    const hits = kb.search('why is the network not working with the zebraprinter', 5);
    expect(hits[0]!.id).toBe('KB-11234');
    expect(hits).toHaveLength(1);
  });
});
