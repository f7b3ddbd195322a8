/** Reads KB articles from Markdown files with YAML front matter (`itguard kb import DIR`, demo seeding). */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parse } from 'yaml';
import { z } from 'zod';
import { formatIssues } from '../../issues.js';
import type { Article } from './embedded.js';

const frontMatter = z.strictObject({
  id: z.string().regex(/^[A-Z]+-\d+$/, { error: 'expected an id like KB-1001' }),
  title: z.string().min(1).max(200),
  category: z.string().min(1),
  tags: z.array(z.string()).default([]),
  questions: z.array(z.string().trim().min(1).max(300)).max(50).default([]),
  updated: z.union([z.string(), z.date()]).transform((d) => (d instanceof Date ? d.toISOString().slice(0, 10) : d)),
});

export function parseArticle(text: string, file: string): Article {
  const m = /^---\r?\n([\s\S]*?)\r?\n---\r?\n?([\s\S]*)$/.exec(text);
  if (!m) throw new Error(`${file}: missing front matter (--- … ---)`);
  const fm = frontMatter.safeParse(parse(m[1]!));
  if (!fm.success) throw new Error(`${file}: ${formatIssues(fm.error.issues).join('; ')}`);
  return { ...fm.data, body: m[2]!.trim() };
}

export function readArticles(dir: string): Article[] {
  const files = readdirSync(dir).filter((f) => f.endsWith('.md')).sort();
  return files.map((f) => parseArticle(readFileSync(join(dir, f), 'utf8'), f));
}

/** The IT vocabulary file a KB folder may hold beside its articles (`kb import` keeps the one in use when absent). */
export const SYNONYMS_FILE = 'synonyms.yaml';

export function readSynonymsFile(dir: string): { file: string; text: string } | undefined {
  const file = join(dir, SYNONYMS_FILE);
  return existsSync(file) ? { file, text: readFileSync(file, 'utf8') } : undefined;
}
