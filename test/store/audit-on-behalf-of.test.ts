/**
 * on_behalf_of in the audit (migration 7): a database written before the column existed migrates, its records still
 * verify, new records with and without the column verify, and the column is covered by the chain once set.
 */
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { canonicalJson, sha256 } from '../../src/canonical.js';
import { AuditStore, GENESIS } from '../../src/store/sqlite/audit-store.js';
import { connect, openDb } from '../../src/store/sqlite/db.js';
import { migrations } from '../../src/store/sqlite/migrations.js';
import { tempDir } from '../helpers/harness.js';

/** A schema-6 database with two audit records hashed the way itguard did before migration 7. */
function schema6Db(file: string): void {
  const raw = connect(file);
  for (const m of migrations.slice(0, 6)) raw.exec(m);
  raw.pragma('user_version = 6');
  let prev = GENESIS;
  for (const seq of [1, 2]) {
    const row = [
      seq,
      1_700_000_000_000 + seq,
      'call.outcome',
      `t${seq}`,
      'helpdesk-agent',
      's1',
      'kb_search',
      '{"query":"vpn"}',
      sha256('{"query":"vpn"}'),
      'ok',
      null,
      null,
    ];
    const hash = sha256(prev + canonicalJson(row));
    raw
      .prepare(
        'INSERT INTO audit (seq, ts, event, trace_id, actor, session_id, tool, args, args_sha256, outcome, code, detail, prev_hash, hash) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)',
      )
      .run(...row, prev, hash);
    prev = hash;
  }
  raw.close();
}

describe('audit on_behalf_of', () => {
  it('old records stay valid after the migration; new ones verify with and without it, and it is part of the hash', () => {
    const { dir, cleanup } = tempDir();
    try {
      const file = join(dir, 'old.db');
      schema6Db(file);
      const db = openDb(file);
      expect(db.pragma('user_version', { simple: true })).toBe(migrations.length);
      const audit = new AuditStore(db, undefined);
      expect(audit.verify()).toMatchObject({ ok: true, count: 2 });
      audit.append(
        {
          event: 'call.outcome',
          actor: 'helpdesk-agent',
          onBehalfOf: 'alice@example.com',
          tool: 'kb_search',
          outcome: 'ok',
        },
        { event: 'call.outcome', actor: 'helpdesk-agent', tool: 'kb_search', outcome: 'ok' },
      );
      expect(audit.verify()).toMatchObject({ ok: true, count: 4 });
      expect(audit.tail(2).map((r) => r.on_behalf_of)).toEqual(['alice@example.com', null]);

      // Changing who the record says the agent acted for breaks the chain at that record — and so does adding one to
      // a record that had none. (The triggers refuse UPDATE; an attacker with the file drops them first.)
      db.exec('DROP TRIGGER audit_no_update');
      db.prepare("UPDATE audit SET on_behalf_of = 'mallory@example.com' WHERE seq = 3").run();
      expect(audit.verify()).toMatchObject({ ok: false, brokenAt: 3 });
      db.prepare("UPDATE audit SET on_behalf_of = 'alice@example.com' WHERE seq = 3").run();
      db.prepare("UPDATE audit SET on_behalf_of = 'alice@example.com' WHERE seq = 1").run();
      expect(audit.verify()).toMatchObject({ ok: false, brokenAt: 1 });
      db.close();
    } finally {
      cleanup();
    }
  });
});
