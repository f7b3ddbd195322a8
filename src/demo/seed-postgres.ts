/**
 * The demo data on the PostgreSQL store (issue 20), from the same files as the embedded seed (seed.ts): for now the
 * KB shipped in kb/. The directory, devices, catalog and MFA factors follow with their PostgreSQL adapters.
 */
import { existsSync } from 'node:fs';
import { readArticles } from '../tools/kb/import.js';
import type { PostgresKb } from '../tools/kb/postgres.js';
import { BUNDLED_KB_DIR } from './seed.js';

/** Adds (or refreshes) the KB articles of `kbDir` (default: kb/ shipped with itguard). */
export async function seedPostgresKb(
  kb: PostgresKb,
  kbDir = BUNDLED_KB_DIR,
): Promise<{ added: number; updated: number }> {
  return kb.upsert(existsSync(kbDir) ? readArticles(kbDir) : []);
}
