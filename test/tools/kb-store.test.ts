/**
 * The embedded KB's storage for issue 21 point 4: migration 10 (questions column, FTS5 rebuilt) on a database
 * written before it, the questions front matter searched, the vocabulary file imported, kept and re-read.
 */
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { connect, openDb } from '../../src/store/sqlite/db.js';
import { migrations } from '../../src/store/sqlite/migrations.js';
import { EmbeddedKb } from '../../src/tools/kb/embedded.js';
import { parseArticle } from '../../src/tools/kb/import.js';
import { tempDir } from '../helpers/harness.js';

const KB_MIGRATION = migrations.findIndex((m) => m.includes('ADD COLUMN questions'));

const article = (id: string, title: string, body: string, questions?: string[]) => ({
  id,
  title,
  category: 'misc',
  tags: [],
  body,
  updated: '2026-12-01',
  ...(questions ? { questions } : {}),
});

describe('migration of the KB tables', () => {
  it('a database with articles written before the migration is searchable after it, with its rows intact', () => {
    const tmp = tempDir();
    try {
      const file = join(tmp.dir, 'old.db');
      const raw = connect(file);
      for (const m of migrations.slice(0, KB_MIGRATION)) raw.exec(m);
      raw.pragma(`user_version = ${KB_MIGRATION}`);
      raw
        .prepare('INSERT INTO kb_articles (id, title, category, tags, body, updated) VALUES (?, ?, ?, ?, ?, ?)')
        .run(
          'KB-7',
          'Stapler jams',
          'hardware',
          'stapler office',
          'Open the stapler and remove the bent staple.',
          '2026-01-01',
        );
      raw.close();
      const db = openDb(file);
      expect(db.pragma('user_version', { simple: true })).toBe(migrations.length);
      const kb = new EmbeddedKb(db);
      expect(kb.find('bent staples', 5).map((h) => h.id)).toEqual(['KB-7']);
      expect(kb.article('KB-7')).toMatchObject({ title: 'Stapler jams', tags: ['stapler', 'office'], questions: [] });
      kb.upsert([article('KB-7', 'Stapler jams', 'Changed.')]);
      expect(kb.find('bent', 5)).toEqual([]); // the rebuilt index follows updates
      db.close();
    } finally {
      tmp.cleanup();
    }
  });
});

describe('questions: front matter', () => {
  it('is parsed, bounded, and searched (weighing above the body)', () => {
    const a = parseArticle(
      '---\nid: KB-1\ntitle: Widget setup\ncategory: x\nupdated: 2026-01-01\nquestions:\n  - how do I frobnicate the gizmo\n---\nBody.',
      'a.md',
    );
    expect(a.questions).toEqual(['how do I frobnicate the gizmo']);
    expect(() =>
      parseArticle('---\nid: KB-1\ntitle: t\ncategory: x\nupdated: 2026-01-01\nquestions: [""]\n---\n', 'b.md'),
    ).toThrow(/b\.md: questions\[0\]/);
    const kb = new EmbeddedKb(openDb(':memory:'));
    kb.upsert([a, article('KB-2', 'Other', 'Mentions frobnicate once in the body.')]);
    expect(kb.find('frobnicate', 5).map((h) => h.id)).toEqual(['KB-1', 'KB-2']);
    expect(kb.article('KB-1')!.questions).toEqual(['how do I frobnicate the gizmo']);
  });
});

describe('the vocabulary file in the database', () => {
  it('uses the shipped file until one is imported; an import is seen by another connection; a bad one changes nothing', () => {
    const tmp = tempDir();
    try {
      const file = join(tmp.dir, 'kb.db');
      const a = new EmbeddedKb(openDb(file));
      const b = new EmbeddedKb(openDb(file));
      a.upsert([article('KB-1', 'Printer help', 'The copier is a printer.'), article('KB-2', 'Quux zorb', 'zorb')]);
      expect(a.synonyms.source()).toMatch(/shipped with itguard/);
      expect(b.find('quux', 5).map((h) => h.id)).toEqual(['KB-2']);
      expect(() => a.synonyms.put('version: x', 'mine.yaml')).toThrow(/mine\.yaml: version/);
      expect(a.synonyms.source()).toMatch(/shipped/);
      a.synonyms.put('version: 7\ngroups:\n  - [quux, printer]\n', 'mine.yaml', Date.now());
      expect(a.find('quux', 5).map((h) => h.id)).toEqual(['KB-2', 'KB-1']);
      b.synonyms.refresh();
      expect(b.synonyms.current().version).toBe(7);
      expect(b.synonyms.source()).toMatch(/imported from mine\.yaml/);
      expect(b.find('quux', 5).map((h) => h.id)).toEqual(['KB-2', 'KB-1']);
    } finally {
      tmp.cleanup();
    }
  });
});

describe('any text as a query', () => {
  it('never throws (no FTS5 syntax from user text, phrases included) and never scores below 0', async () => {
    const fc = await import('fast-check');
    const { seedDemo } = await import('../../src/demo/seed.js');
    const db = openDb(':memory:');
    seedDemo(db);
    const kb = new EmbeddedKb(db);
    const vocab = [
      'locked out',
      'team inbox',
      '"',
      'NEAR(',
      '*',
      'OR',
      'AND',
      '-',
      ':',
      '^',
      'pasword',
      'wi-fi',
      'ǅ',
      '\u0301',
    ];
    const query = fc.array(fc.oneof(fc.constantFrom(...vocab), fc.string({ unit: 'binary', maxLength: 12 })), {
      maxLength: 40,
    });
    fc.assert(
      fc.property(query, (parts) => {
        for (const h of kb.find(parts.join(' ').slice(0, 500), 20)) expect(h.score).toBeGreaterThanOrEqual(0);
      }),
      { numRuns: 300, seed: 20261206 },
    );
    db.close();
  });
});

describe('spelling correction reads the unstemmed word index', () => {
  it('finds a misspelt word by its neighbour, and follows updates of the articles', () => {
    const kb = new EmbeddedKb(openDb(':memory:'));
    kb.upsert([article('KB-1', 'Outlook crashes', 'Repair the profile.'), article('KB-2', 'Printers', 'Add one.')]);
    expect(kb.find('outlok', 5).map((h) => h.id)).toEqual(['KB-1']);
    kb.upsert([article('KB-1', 'Mail client crashes', 'Repair the profile.')]);
    expect(kb.find('outlok', 5)).toEqual([]);
  });
});

describe('a large import', () => {
  const segments = (db: ReturnType<typeof openDb>) =>
    (db.prepare('SELECT count(DISTINCT segid) AS n FROM kb_fts_idx').get() as { n: number }).n;
  const batch = (from: number, n: number) =>
    Array.from({ length: n }, (_, i) =>
      article(`KB-${from + i}`, `Topic ${from + i} printer`, `Body of article ${i} about toner number t${from + i}.`),
    );

  it('merges the index into one segment and searches the same after later small edits', () => {
    const db = openDb(':memory:');
    const kb = new EmbeddedKb(db);
    expect(kb.upsert(batch(1000, 600))).toEqual({ added: 600, updated: 0 });
    // FTS5 'optimize' leaves one segment (the same load leaves a dozen without it).
    expect(segments(db)).toBe(1);
    expect(kb.find('t1417 toner', 5)[0]?.id).toBe('KB-1417');
    kb.upsert([article('KB-1417', 'Topic 417 scanner', 'Rewritten about the scanner t1417.')]);
    expect(kb.find('t1417', 5).map((h) => h.id)).toEqual(['KB-1417']);
    expect(kb.find('scanner', 5)[0]?.id).toBe('KB-1417');
    expect(kb.count()).toBe(600);
    db.close();
  });

  it('leaves a batch under a quarter of the KB to automerge (optimize rewrites the whole index)', () => {
    const db = openDb(':memory:');
    const kb = new EmbeddedKb(db);
    kb.upsert(batch(10_000, 2000));
    expect(segments(db)).toBe(1);
    kb.upsert(batch(20_000, 500)); // 500 of 2,500
    expect(segments(db)).toBeGreaterThan(1);
    expect(kb.find('t20499', 5)[0]?.id).toBe('KB-20499');
    db.close();
  });
});
