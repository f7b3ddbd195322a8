/** Seeds a new database with the demo directory (and MFA factors), devices, software catalog and the KB shipped in kb/. Runs once per database. */
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import type { Db } from '../store/sqlite/db.js';
import { EmbeddedDirectory } from '../tools/directory/embedded.js';
import { EmbeddedKb } from '../tools/kb/embedded.js';
import { readArticles } from '../tools/kb/import.js';
import { MetaStore } from '../store/sqlite/meta-store.js';
import { MfaStore } from '../store/sqlite/mfa-store.js';
import { EmbeddedDeploy } from '../tools/software/embedded.js';
import { demoDevices, demoPackages, demoUsers } from './data.js';

/** kb/ beside dist/ (or src/ in tests). */
export const BUNDLED_KB_DIR = fileURLToPath(new URL('../../kb', import.meta.url));

export function isSeeded(db: Db): boolean {
  return new MetaStore(db).get('demo_seeded') !== undefined;
}

/** Returns true when it seeded (a new database), false when it had been seeded before. */
export function seedDemo(db: Db, kbDir = BUNDLED_KB_DIR): boolean {
  if (isSeeded(db)) return false;
  const articles = existsSync(kbDir) ? readArticles(kbDir) : [];
  // One IMMEDIATE transaction: several processes starting on a new file seed it once.
  return db
    .transaction(() => {
      if (isSeeded(db)) return false;
      new EmbeddedDirectory(db).insert(
        demoUsers.map((u) => ({ ...u, groups: [...u.groups], disabled: u.disabled ?? false })),
      );
      new EmbeddedKb(db).upsert(articles);
      new EmbeddedDeploy(db).seed(
        demoPackages.map((p) => ({ ...p, versions: [...p.versions], platforms: [...p.platforms] })),
        demoDevices,
      );
      // Every demo user gets a TOTP factor; `itguard directory enroll USER` re-enrolls and prints its URI.
      const mfa = new MfaStore(db);
      for (const u of demoUsers) mfa.enroll(u.username);
      new MetaStore(db).set('demo_seeded', new Date().toISOString());
      return true;
    })
    .immediate();
}
