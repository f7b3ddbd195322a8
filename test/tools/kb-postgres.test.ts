/**
 * The PostgreSQL KB adapter (src/tools/kb/postgres.ts) on a real PostgreSQL server, seeded from the same kb/ folder
 * as the embedded KB, asked the same questions as the embedded KB's tests (kb.test.ts, kb-recall.test.ts,
 * kb-store.test.ts) with the same expectations.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { HELD_OUT_FILE, loadQuestions, QUESTIONS_FILE, scoreRecall } from '../../bench/lib/recall-score.mjs';
import { BackendError } from '../../src/core/backend.js';
import { seedPostgresKb } from '../../src/demo/seed-postgres.js';
import { connectPg, type PgStore } from '../../src/store/postgres/connect.js';
import { migratePg } from '../../src/store/postgres/migrations.js';
import type { KbHit } from '../../src/core/ports/kb.js';
import { parseArticle } from '../../src/tools/kb/import.js';
import { PostgresKb } from '../../src/tools/kb/postgres.js';
import { type Pg, startPg } from '../helpers/pg.js';

let pg: Pg;
const stores: PgStore[] = [];
let kb: PostgresKb;
const o = () => ({ signal: new AbortController().signal });

let dbs = 0;
async function freshKb(): Promise<PostgresKb> {
  const s = await connectPg(await pg.createDatabase(`kb_${++dbs}`));
  stores.push(s);
  await migratePg(s);
  return new PostgresKb(s);
}

beforeAll(async () => {
  pg = await startPg();
  kb = await freshKb();
  const t0 = performance.now();
  const r = await seedPostgresKb(kb);
  console.log(`seeded ${r.added} articles in ${Math.round(performance.now() - t0)} ms`);
}, 60_000);

afterAll(async () => {
  await Promise.all(stores.map((s) => s.close()));
  await pg?.stop();
});

const article = (id: string, title: string, body: string, questions?: string[]) => ({
  id,
  title,
  category: 'misc',
  tags: [],
  body,
  updated: '2026-12-01',
  ...(questions ? { questions } : {}),
});

describe('kb search on PostgreSQL (kb.test.ts)', () => {
  it('ranks the VPN-disconnect article first for "vpn keeps disconnecting"', async () => {
    const results = await kb.search('vpn keeps disconnecting', 5, o());
    expect(results.length).toBeGreaterThan(1);
    expect(results[0]!.title.toLowerCase()).toMatch(/vpn/);
    expect(results[0]!.title.toLowerCase()).toMatch(/disconnect|drop/);
    expect(results[0]!.snippet).toContain('[[');
  });

  it('stems: "printers" finds printer articles', async () => {
    const results = await kb.search('printers jammed queue', 3, o());
    expect(results.some((x) => /print/i.test(x.title))).toBe(true);
  });

  it('treats query syntax in the query as plain words', async () => {
    for (const q of ['NEAR( "vpn" OR * ) AND -', `vpn' OR 1=1 --`, '"""', '!!! & | <-> :*', 'or or or'])
      await expect(kb.search(q, 5, o())).resolves.toBeInstanceOf(Array);
  });

  it('gets an article by id (case-insensitively), with its tags and questions; none for an unknown id', async () => {
    const a = await kb.get('KB-1030', o());
    expect(a?.body).toMatch(/ignore previous instructions/i);
    expect((await kb.get('kb-1030', o()))?.id).toBe('KB-1030');
    expect(Array.isArray(a?.tags)).toBe(true);
    expect(await kb.get('KB-99999', o())).toBeUndefined();
  });

  it('an aborted call is refused with a BackendError', async () => {
    const ac = new AbortController();
    ac.abort();
    await expect(kb.search('vpn', 5, { signal: ac.signal })).rejects.toBeInstanceOf(BackendError);
  });

  it('probes: article count and vocabulary', async () => {
    const p = await kb.probe(o());
    expect(p.ok).toBe(true);
    expect(p.checks[0]!.detail).toMatch(/^\d+ article\(s\)$/);
    expect(p.target).not.toMatch(/:[^@/]*@.*\*\*\*/); // no password in the URL (there is none here)
  });
});

describe('kb recall on the demo KB, on PostgreSQL (kb-recall.test.ts)', () => {
  /** scoreRecall asks synchronously: the answers are fetched first. */
  async function answers(qs: { q: string }[]): Promise<(q: string, n: number) => KbHit[]> {
    const got = new Map<string, KbHit[]>();
    for (const { q } of qs) got.set(q, await kb.search(q, 5, o()));
    return (q, n) => got.get(q)!.slice(0, n);
  }

  it('meets the embedded KB targets: recall@3 >= 0.95, recall@1 >= 0.8', async () => {
    const questions = loadQuestions(QUESTIONS_FILE);
    const r = scoreRecall(questions, await answers(questions));
    console.log(`PostgreSQL KB recall@3 ${r.at3.toFixed(3)}, recall@1 ${r.at1.toFixed(3)} (${r.n} questions)`);
    expect(r.at3, JSON.stringify(r.misses)).toBeGreaterThanOrEqual(0.95);
    expect(r.at1, JSON.stringify(r.misses)).toBeGreaterThanOrEqual(0.8);
  });

  it('the two questions of issue 21 find their article first', async () => {
    expect((await kb.search('too many wrong passwords now my account is blocked', 5, o()))[0]!.id).toBe('KB-1011');
    expect((await kb.search('how do i open the team inbox for support@', 5, o()))[0]!.id).toBe('KB-1020');
  });

  it('the held-out set stays at the embedded KB floor (recall@3 >= 0.9, @1 >= 0.7)', async () => {
    const questions = loadQuestions(HELD_OUT_FILE);
    const r = scoreRecall(questions, await answers(questions));
    console.log(`PostgreSQL KB held-out recall@3 ${r.at3.toFixed(3)}, recall@1 ${r.at1.toFixed(3)} (${r.n} questions)`);
    expect(r.at3, JSON.stringify(r.misses)).toBeGreaterThanOrEqual(0.9);
    expect(r.at1, JSON.stringify(r.misses)).toBeGreaterThanOrEqual(0.7);
  });

  it('every score is a number >= 0, higher first', async () => {
    for (const { q } of loadQuestions(QUESTIONS_FILE)) {
      const hits = await kb.search(q, 20, o());
      for (const h of hits) expect(h.score).toBeGreaterThanOrEqual(0);
      expect(hits.map((h) => h.score)).toEqual([...hits.map((h) => h.score)].sort((a, b) => b - a));
    }
  });
});

describe('kb storage on PostgreSQL (kb-store.test.ts)', () => {
  it('questions: front matter is searched, weighing above the body; an update is followed by the index', async () => {
    const k = await freshKb();
    const a = parseArticle(
      '---\nid: KB-1\ntitle: Widget setup\ncategory: x\nupdated: 2026-01-01\nquestions:\n  - how do I frobnicate the gizmo\n---\nBody.',
      'a.md',
    );
    expect(await k.upsert([a, article('KB-2', 'Other', 'Mentions frobnicate once in the body.')])).toEqual({
      added: 2,
      updated: 0,
    });
    expect((await k.find('frobnicate', 5)).map((h) => h.id)).toEqual(['KB-1', 'KB-2']);
    expect((await k.get('KB-1', o()))!.questions).toEqual(['how do I frobnicate the gizmo']);
    await k.upsert([article('KB-7', 'Stapler jams', 'Open the stapler and remove the bent staple.')]);
    expect((await k.find('bent staples', 5)).map((h) => h.id)).toEqual(['KB-7']);
    expect(await k.upsert([article('KB-7', 'Stapler jams', 'Changed.')])).toEqual({ added: 0, updated: 1 });
    expect(await k.find('bent', 5)).toEqual([]);
  });

  it('corrects a misspelt word against the KB vocabulary', async () => {
    const k = await freshKb();
    await k.upsert([article('KB-1', 'Outlook will not start', 'Outlook hangs at the splash screen.')]);
    expect((await k.find('outlok hangs', 5)).map((h) => h.id)).toEqual(['KB-1']);
  });

  it('an imported vocabulary file is used by the next search; a bad one is refused and changes nothing', async () => {
    const k = await freshKb();
    await k.upsert([article('KB-1', 'Shared mailbox access', 'Ask for access to the shared mailbox.')]);
    expect(await k.find('grumbleflux', 5)).toEqual([]);
    await k.putSynonyms('version: 7\ngroups:\n  - [shared mailbox, grumbleflux]\n', 'test.yaml');
    expect((await k.find('grumbleflux', 5)).map((h) => h.id)).toEqual(['KB-1']);
    await expect(k.putSynonyms('version: 0\n', 'bad.yaml')).rejects.toThrow(/bad\.yaml/);
    expect((await k.probe(o())).checks[1]!.detail).toMatch(/version 7/);
  });
});

describe('kb search at scale on PostgreSQL (kb.test.ts)', () => {
  it('ignores stopwords and terms most articles contain, so the rare term decides', async () => {
    const k = await freshKb();
    await k.upsert(
      Array.from({ length: 2500 }, (_, i) => ({
        id: `KB-${10000 + i}`,
        title: `Network note ${i}`,
        category: 'network',
        tags: ['network'],
        body: `The network is working for team ${i}. ${i === 1234 ? 'The zebraprinter driver needs an update.' : ''}`,
        updated: '2026-01-01',
      })),
    );
    const hits = await k.find('why is the network not working with the zebraprinter', 5);
    expect(hits[0]!.id).toBe('KB-11234');
    expect(hits).toHaveLength(1);
  });

  it('counts a word again after an import: a word that became common stops deciding', async () => {
    const k = await freshKb();
    const a = (i: number, body: string) => ({
      id: `KB-${10000 + i}`,
      title: `Note ${i}`,
      category: 'misc',
      tags: ['misc'],
      body,
      updated: '2026-01-01',
    });
    await k.upsert(
      Array.from({ length: 2000 }, (_, i) =>
        a(i, i < 10 ? 'quokka sighting' : i < 20 ? 'wombat sighting' : `filler text ${i}`),
      ),
    );
    const ids = async () => (await k.find('quokka wombat', 50)).map((h) => Number(h.id.slice(3)) - 10000);
    expect((await ids()).some((i) => i < 10)).toBe(true);
    await k.upsert(Array.from({ length: 1000 }, (_, i) => a(2000 + i, 'quokka everywhere')));
    const after = await ids();
    expect(after.length).toBeGreaterThan(0);
    expect(after.every((i) => i >= 10 && i < 20)).toBe(true);
  });
});
