/** The adapter-neutral parts of KB search: the vocabulary file, the query planner, spelling, re-ranking, excerpts. */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { planQuery } from '../../src/tools/kb/query.js';
import { scoreCandidates } from '../../src/tools/kb/rank.js';
import { snippet } from '../../src/tools/kb/snippet.js';
import { correct, withinOneEdit } from '../../src/tools/kb/spell.js';
import { BUNDLED_SYNONYMS, eachWord, EMPTY_SYNONYMS, fold, parseSynonyms } from '../../src/tools/kb/synonyms.js';

const syn = parseSynonyms(
  'version: 3\ngroups:\n  - [locked out, lockout, blocked]\n  - [shared mailbox, team inbox]\nexpand:\n  iphone: [phone]\n',
  'test.yaml',
);
const words = (c: ReturnType<typeof planQuery>) => c.map((x) => x.map((a) => a.words.join(' ')));

describe('the vocabulary file', () => {
  it('the shipped file is valid and versioned', () => {
    const s = parseSynonyms(readFileSync(BUNDLED_SYNONYMS, 'utf8'), BUNDLED_SYNONYMS);
    expect(s.version).toBeGreaterThanOrEqual(1);
    expect(s.groupCount).toBeGreaterThan(50);
  });

  it('refuses a bad file, naming the file, the field and the rule', () => {
    expect(() => parseSynonyms('groups: []', 'x.yaml')).toThrow(/x\.yaml: version: /);
    expect(() => parseSynonyms('version: 1\ngroups:\n  - [alone]', 'x.yaml')).toThrow(/x\.yaml: groups\[0\]: /);
    expect(() => parseSynonyms('version: 1\ngroups:\n  - [a, b]\n  - [ok, "!!"]', 'x.yaml')).toThrow(
      /groups\[1\]: every entry needs a letter/,
    );
    expect(() => parseSynonyms('version: 1\nextra: 1', 'x.yaml')).toThrow(/extra: unknown key/);
    expect(() => parseSynonyms('version: [', 'x.yaml')).toThrow(/x\.yaml: not YAML/);
  });

  it('folds simple English endings the same way on both sides', () => {
    expect(['block', 'blocked', 'blocking', 'blocks'].map(fold)).toEqual(['block', 'block', 'block', 'block']);
    expect(['drop', 'dropped', 'dropping'].map(fold)).toEqual(['drop', 'drop', 'drop']);
    expect(['change', 'changes', 'changing'].map(fold)).toEqual(['chang', 'chang', 'chang']);
  });
});

describe('planQuery', () => {
  it('expands a group both ways, phrases as phrases, the words typed first and heavier', () => {
    const c = planQuery('my account is blocked', syn);
    expect(words(c)).toEqual([['account'], ['blocked', 'locked out', 'lockout']]);
    expect(c[1]!.map((a) => a.weight)).toEqual([1, 0.8, 0.8]);
    expect(words(planQuery('I was locked out again', syn))).toEqual([['locked out', 'lockout', 'blocked'], ['again']]);
    expect(words(planQuery('open the team inbox for support@', syn))).toEqual([
      ['open'],
      ['team inbox', 'shared mailbox'],
      ['support'],
    ]);
  });

  it('matches a multi-word entry only in order and next to each other', () => {
    expect(words(planQuery('inbox of my team', syn))).toEqual([['inbox'], ['team']]);
  });

  it('expands one way only where the file says so', () => {
    expect(words(planQuery('iphone', syn))).toEqual([['iphone', 'phone']]);
    expect(words(planQuery('phone', syn))).toEqual([['phone']]);
  });

  it('drops stopwords unless nothing else is left; bounds the alternatives', () => {
    expect(words(planQuery('how do I', EMPTY_SYNONYMS))).toEqual([['how'], ['do'], ['i']]);
    const long = planQuery(Array.from({ length: 100 }, (_, i) => `word${i}`).join(' '), EMPTY_SYNONYMS);
    expect(long.flat().length).toBeLessThanOrEqual(32);
  });

  it('adds a lighter spelling correction for a word the KB lacks, without expanding it', () => {
    const vocab = new Map([
      ['password', 5],
      ['blocked', 1],
    ]);
    const lex = {
      has: (w: string) => vocab.has(w),
      wordsStartingWith: (p: string) => [...vocab].filter(([t]) => t.startsWith(p)).map(([term, n]) => ({ term, n })),
    };
    const c = planQuery('forgot pasword', syn, lex);
    expect(words(c)).toEqual([['forgot'], ['pasword', 'password']]);
    expect(c[1]![1]!.weight).toBeLessThan(0.8);
    // "blocked" is in a group, but a guess is not expanded: "blocekd" does not pull in "locked out".
    expect(words(planQuery('blocekd', syn, lex))).toEqual([['blocekd', 'blocked']]);
    expect(words(planQuery('bxocekd', syn, lex))).toEqual([['bxocekd']]); // two edits away: left alone
  });
});

describe('spelling', () => {
  const vocab = new Map([
    ['outlook', 9],
    ['receive', 4],
    ['printer', 7],
    ['printers', 2],
  ]);
  const n = [...vocab].map(([term, count]) => ({ term, n: count }));
  it('takes the most common word one edit away (drop, add, change, swap)', () => {
    expect(correct('outlok', n)).toBe('outlook');
    expect(correct('recieve', n)).toBe('receive');
    expect(correct('printerr', n)).toBe('printer');
    expect(correct('otulook', n)).toBe('outlook');
    expect(withinOneEdit('recieve', 'receive')).toBe(true);
    expect(withinOneEdit('recieve', 'reserve')).toBe(false);
  });
  it('leaves codes, short words and unknown words as typed', () => {
    expect(correct('0x80070005', n)).toBeUndefined();
    expect(correct('vpn', n)).toBeUndefined();
    expect(correct('zzzzzz', n)).toBeUndefined();
  });
});

describe('scoreCandidates', () => {
  const stats = { n: 100, avgLen: [20, 20, 1, 200], weights: [10, 5, 4, 1] };
  const df = () => 3;
  it('counts a concept once however many of its synonyms an article holds', () => {
    const concepts = [
      [
        { words: ['size', 'limit'], weight: 1 },
        { words: ['too', 'big'], weight: 0.8 },
        { words: ['large', 'file'], weight: 0.8 },
      ],
      [{ words: ['inbox'], weight: 1 }],
    ];
    const [many, both] = scoreCandidates(
      concepts,
      [
        ['Large file, too big, size limit', '', '', 'A large file is too big over the size limit.'],
        ['Inbox size limit', '', '', 'Your inbox has a size limit.'],
      ],
      df,
      stats,
    );
    expect(both!).toBeGreaterThan(many!);
  });
  it('weighs the title above the body', () => {
    const c = [[{ words: ['vpn'], weight: 1 }]];
    const [title, body] = scoreCandidates(
      c,
      [
        ['VPN notes', '', '', 'text'],
        ['Notes', '', '', 'vpn text'],
      ],
      df,
      stats,
    );
    expect(title!).toBeGreaterThan(body!);
  });
});

describe('eachWord', () => {
  it('finds the same words as the regular expression, with their offsets', () => {
    const texts = [
      'Reset your password at https://portal.example/reset, then sign-in works (0x80070005)!',
      'Ünïcödé Straße, naïve café; 東京 ok ٣٤ 𝐀𝐁c x',
      '  leading and trailing  ',
      '',
      '---',
    ];
    for (const t of texts) {
      const got: string[] = [];
      eachWord(t, (s, e) => got.push(t.slice(s, e)));
      expect(got).toEqual(t.match(/[\p{L}\p{N}]+/gu) ?? []);
    }
  });
});

describe('snippet', () => {
  it('marks the query words in the densest window, cutting with …', () => {
    const body = `${'filler '.repeat(40)}Reset your password at the portal, then the password works. ${'more '.repeat(40)}`;
    const s = snippet(body, new Set(['password', 'portal']));
    expect(s).toMatch(/^ … .*\[\[password\]\].*\[\[portal\]\].* … $/);
    expect(snippet('short body', new Set(['x']))).toBe('short body');
  });
});
