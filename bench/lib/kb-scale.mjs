/**
 * Benchmark 4: kb_search latency at 10,000 articles (and, reported without a verdict, at 100,000). Generates
 * deterministic synthetic articles (bench/lib/words.mjs) into a new database (openDb, durability strict) through
 * one EmbeddedKb.upsert (one transaction), then times varied searches directly on the backend
 * (EmbeddedKb.find(query, 5): the FTS5 MATCH, BM25 ranking and snippet that kb_search runs, with its default
 * limit) after untimed warm-up searches (2,000 after 200 at 10,000 articles; run.mjs sets the counts). The same
 * queries on the shipped demo KB are the baseline.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { seedDemo } from '../../dist/demo/seed.js';
import { openDb } from '../../dist/store/sqlite/db.js';
import { EmbeddedKb } from '../../dist/tools/kb/embedded.js';
import { mulberry32, pick, zipfIndex } from './prng.mjs';
import { ADJECTIVES, CATEGORIES, FILLER, MODELS, NOUNS, SYMPTOMS, VERBS } from './words.mjs';

const cap = (w) => w[0].toUpperCase() + w.slice(1);

function errorCode(rnd) {
  return `0x${Math.floor(rnd() * 0xffffffff)
    .toString(16)
    .padStart(8, '0')}`;
}

/** Index in 0..n-1 skewed towards the head (P(first 10%) ≈ 32%): popular topics get more articles and questions. */
const skewed = (rnd, list) => list[Math.floor(list.length * Math.pow(rnd(), 2))];

/**
 * One sentence of an article about `topic` (a few nouns, verbs and symptoms of its own): ordinary English
 * filler with a Zipf skew (the, to, and are in every article, as in a real KB), the article's topic words,
 * the odd unrelated IT word, model numbers and error codes.
 */
function sentence(rnd, topic) {
  const n = 8 + Math.floor(rnd() * 12);
  const words = [];
  for (let i = 0; i < n; i++) {
    const r = rnd();
    if (r < 0.5) words.push(FILLER[zipfIndex(rnd, FILLER.length)]);
    else if (r < 0.72) words.push(pick(rnd, topic.nouns));
    else if (r < 0.8) words.push(pick(rnd, NOUNS));
    else if (r < 0.88) words.push(rnd() < 0.7 ? pick(rnd, topic.verbs) : pick(rnd, VERBS));
    else if (r < 0.94) words.push(rnd() < 0.7 ? pick(rnd, topic.symptoms) : pick(rnd, SYMPTOMS));
    else if (r < 0.98) words.push(pick(rnd, ADJECTIVES));
    else if (r < 0.99) words.push(`${pick(rnd, MODELS)} ${1000 + Math.floor(rnd() * 9000)}`);
    else words.push(`error ${errorCode(rnd)}`);
  }
  return `${cap(words.join(' '))}.`;
}

export function makeArticles(count, seed = 20251124) {
  const rnd = mulberry32(seed);
  const articles = [];
  for (let i = 0; i < count; i++) {
    const nouns = new Set();
    while (nouns.size < 3 + Math.floor(rnd() * 3)) nouns.add(skewed(rnd, NOUNS));
    const topic = {
      nouns: [...nouns],
      verbs: [pick(rnd, VERBS), pick(rnd, VERBS)],
      symptoms: [pick(rnd, SYMPTOMS), pick(rnd, SYMPTOMS)],
    };
    const [noun, noun2] = topic.nouns;
    const title =
      rnd() < 0.5
        ? `${cap(topic.verbs[0])} ${pick(rnd, ADJECTIVES)} ${noun} ${noun2}`
        : `${cap(noun)} ${topic.symptoms[0]} after ${topic.verbs[0]}ing ${noun2}`;
    const paragraphs = [];
    const np = 2 + Math.floor(rnd() * 4);
    for (let p = 0; p < np; p++) {
      const ns = 2 + Math.floor(rnd() * 4);
      paragraphs.push(Array.from({ length: ns }, () => sentence(rnd, topic)).join(' '));
    }
    articles.push({
      id: `KB-${100000 + i}`,
      title,
      category: pick(rnd, CATEGORIES),
      tags: topic.nouns.slice(0, 4).map((t) => t.replace(/[^a-z0-9-]/g, '')),
      body: paragraphs.join('\n\n'),
      updated: new Date(Date.UTC(2024, 0, 1) + Math.floor(rnd() * 600) * 86400000).toISOString().slice(0, 10),
    });
  }
  return articles;
}

/** Query mix: keywords (60%), plain-English questions (25%), an error code or model plus a word (15%). */
export function makeQueries(count, seed = 7) {
  const rnd = mulberry32(seed);
  const noun = () => skewed(rnd, NOUNS);
  const queries = [];
  for (let i = 0; i < count; i++) {
    const r = rnd();
    if (r < 0.6) {
      const n = 2 + Math.floor(rnd() * 3);
      const ws = [noun()];
      while (ws.length < n) ws.push(rnd() < 0.6 ? noun() : pick(rnd, SYMPTOMS));
      queries.push({ kind: 'keywords', q: ws.join(' ') });
    } else if (r < 0.85) {
      const t = Math.floor(rnd() * 4);
      const q =
        t === 0
          ? `how do I ${pick(rnd, VERBS)} my ${noun()}`
          : t === 1
            ? `my ${noun()} is ${pick(rnd, SYMPTOMS)} after the ${noun()} update`
            : t === 2
              ? `${noun()} not working on ${pick(rnd, ADJECTIVES)} ${noun()}`
              : `cannot ${pick(rnd, VERBS)} ${noun()} to ${noun()}, it says ${pick(rnd, SYMPTOMS)}`;
      queries.push({ kind: 'question', q });
    } else {
      const q =
        rnd() < 0.5
          ? `error ${errorCode(rnd)} ${noun()}`
          : `${pick(rnd, MODELS)} ${1000 + Math.floor(rnd() * 9000)} ${noun()}`;
      queries.push({ kind: 'code/model', q });
    }
  }
  return queries;
}

function timeQueries(kb, queries, warmup) {
  for (const { q } of queries.slice(0, warmup)) kb.find(q, 5);
  const samples = [];
  let hits = 0;
  for (const { kind, q } of queries.slice(warmup)) {
    const s = performance.now();
    const r = kb.find(q, 5);
    samples.push({ kind, ms: performance.now() - s });
    hits += r.length;
  }
  return { samples, meanHits: hits / (queries.length - warmup) };
}

/**
 * The same queries against the shipped demo KB (the baseline: what the scale costs; skipped with `demo: false`)
 * and against `articles` synthetic articles, loaded in one `upsert` call (one transaction).
 */
export async function kbScale({
  articles: count = 10_000,
  searches = 2_000,
  warmup = 200,
  demo: withDemo = true,
} = {}) {
  const dir = mkdtempSync(join(tmpdir(), 'itguard-bench-kb-'));
  const demoDb = withDemo ? openDb(join(dir, 'demo.db'), { durability: 'strict' }) : undefined;
  const db = openDb(join(dir, 'kb.db'), { durability: 'strict' });
  try {
    const queries = makeQueries(searches + warmup);
    let demo;
    if (demoDb) {
      seedDemo(demoDb);
      const demoKb = new EmbeddedKb(demoDb);
      demo = { count: demoKb.count(), ...timeQueries(demoKb, queries, warmup) };
    }

    const kb = new EmbeddedKb(db);
    const g0 = performance.now();
    const articles = makeArticles(count);
    const genMs = performance.now() - g0;
    const t0 = performance.now();
    kb.upsert(articles);
    const loadMs = performance.now() - t0;
    if (kb.count() !== count) throw new Error(`expected ${count} articles, found ${kb.count()}`);
    const q0 = performance.now();
    const big = timeQueries(kb, queries, warmup);
    const queryMs = performance.now() - q0;
    const words = articles.reduce((n, a) => n + a.body.split(/\s+/).length, 0) / count;
    return { count, genMs, loadMs, queryMs, words, ...big, demo };
  } finally {
    demoDb?.close();
    db.close();
    rmSync(dir, { recursive: true, force: true });
  }
}
