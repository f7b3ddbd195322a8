/**
 * The audit key's fingerprint in the store and anchored heads (DESIGN §5): a process with the wrong key, or none, for
 * a keyed chain (or a key for an unkeyed one) refuses to append; `verify` with an anchored head catches a truncated
 * tail and a rewritten chain. The CLI's side (exit 2 with a sentence, `serve` refusing to start, `--expect-head`)
 * runs against the built CLI at the end.
 */
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { AuditKeyMismatch, AuditStore, KEY_FINGERPRINT } from '../../src/store/sqlite/audit-store.js';
import { openDb } from '../../src/store/sqlite/db.js';
import { MetaStore } from '../../src/store/sqlite/meta-store.js';
import { runCli } from '../helpers/cli.js';
import { tempDir } from '../helpers/harness.js';

const K1 = 'first-audit-key-0123456789';
const K2 = 'other-audit-key-0123456789';

describe('the audit key fingerprint', () => {
  it('is recorded with the first link (never the key) and refuses a process with another key or none', () => {
    const db = openDb(':memory:');
    new AuditStore(db, K1).append({ event: 'x', actor: 'a' });
    const fp = new MetaStore(db).get(KEY_FINGERPRINT)!;
    expect(fp).toMatch(/^hmac-sha256:[0-9a-f]{32}$/);
    expect(fp).not.toContain(K1);
    expect(() => new AuditStore(db, undefined).append({ event: 'y', actor: 'b' })).toThrow(
      /keyed, but ITGUARD_AUDIT_KEY is not set/,
    );
    expect(() => new AuditStore(db, K2).append({ event: 'y', actor: 'b' })).toThrow(AuditKeyMismatch);
    expect(new AuditStore(db, K1).head().seq).toBe(1); // nothing was appended
    new AuditStore(db, K1).append({ event: 'z', actor: 'c' });
    expect(new AuditStore(db, K1).verify()).toMatchObject({ ok: true, count: 2 });
    // Without the key, verify says why rather than calling the chain tampered.
    expect(new AuditStore(db, undefined).verify()).toMatchObject({
      ok: false,
      reason: expect.stringMatching(/keyed, but ITGUARD_AUDIT_KEY is not set/),
    });
  });

  it('refuses a key on an unkeyed chain', () => {
    const db = openDb(':memory:');
    new AuditStore(db, undefined).append({ event: 'x', actor: 'a' });
    expect(new MetaStore(db).get(KEY_FINGERPRINT)).toBe('none');
    expect(() => new AuditStore(db, K1).append({ event: 'y', actor: 'b' })).toThrow(/is not keyed: unset/);
  });

  it('infers the key of a chain written before fingerprints from its head', () => {
    const db = openDb(':memory:');
    new AuditStore(db, K1).append({ event: 'x', actor: 'a' });
    db.prepare('DELETE FROM meta WHERE key = ?').run(KEY_FINGERPRINT);
    expect(() => new AuditStore(db, undefined).checkKey()).toThrow(/keyed, but ITGUARD_AUDIT_KEY is not set/);
    expect(() => new AuditStore(db, K2).checkKey()).toThrow(/is not the key/);
    new AuditStore(db, K1).checkKey();
    expect(new MetaStore(db).get(KEY_FINGERPRINT)).toMatch(/^hmac-sha256:/);
  });
});

describe('verify with an anchored head', () => {
  it('fails on a truncated tail and on a chain rewritten to verify on its own', () => {
    const db = openDb(':memory:');
    const audit = new AuditStore(db, undefined);
    for (let i = 0; i < 6; i++) audit.append({ event: 'test', actor: 'a', detail: { i } });
    const anchored = audit.head();
    expect(audit.verify({ expectHead: anchored })).toMatchObject({ ok: true, count: 6 });
    audit.append({ event: 'later', actor: 'a' });
    expect(audit.verify({ expectHead: anchored }).ok).toBe(true); // a longer chain still holds the anchored head

    // The attacker drops the delete trigger and removes the last two records: alone, the chain verifies.
    db.exec('DROP TRIGGER audit_no_delete');
    db.prepare('DELETE FROM audit WHERE seq >= 6').run();
    expect(audit.verify()).toMatchObject({ ok: true, count: 5 });
    expect(audit.verify({ expectHead: anchored })).toMatchObject({
      ok: false,
      brokenAt: 6,
      reason: expect.stringMatching(/ends at seq 5, before the anchored head seq 6: records were removed/),
    });

    // …and rewrites the whole chain (unkeyed, so anyone can): it verifies alone, but not against the anchor.
    db.prepare('DELETE FROM audit').run();
    for (let i = 0; i < 6; i++) audit.append({ event: 'test', actor: 'mallory', detail: { i } });
    expect(audit.verify().ok).toBe(true);
    expect(audit.verify({ expectHead: anchored })).toMatchObject({ ok: false, brokenAt: 6 });
  });
});

describe('the CLI (built)', () => {
  // Ten CLI processes: generous on a loaded machine.
  it(
    'exits 2 with a sentence on the wrong key, refuses to serve, and checks --expect-head',
    { timeout: 120_000 },
    () => {
      const { dir, cleanup } = tempDir();
      try {
        const db = join(dir, 'k.db');
        const keyed = { ITGUARD_AUDIT_KEY: K1 };
        expect(runCli(['kill', '--reason', 'drill', '--db', db], keyed).code).toBe(0);
        const ok = runCli(['audit', 'verify', '--json', '--db', db], keyed);
        expect(ok.code).toBe(0);
        const head = (JSON.parse(ok.stdout) as { head: { seq: number; hash: string } }).head;
        expect(head.seq).toBeGreaterThan(0);

        const unkeyed = runCli(['resume', '--reason', 'x', '--db', db], { ITGUARD_AUDIT_KEY: '' });
        expect(unkeyed.code).toBe(2);
        expect(unkeyed.stderr).toMatch(/audit chain in this database is keyed, but ITGUARD_AUDIT_KEY is not set/);
        const serve = runCli(['serve', '--stdio', '--db', db], { ITGUARD_AUDIT_KEY: K2 });
        expect(serve.code).toBe(2);
        expect(serve.stderr).toMatch(/ITGUARD_AUDIT_KEY is not the key the audit chain/);

        const anchor = `${head.seq}:${head.hash}`;
        expect(runCli(['audit', 'verify', '--expect-head', anchor, '--db', db], keyed).code).toBe(0);
        const further = runCli(['audit', 'verify', '--expect-head', `${head.seq + 5}:${head.hash}`, '--db', db], keyed);
        expect(further.code).toBe(1);
        expect(further.stdout).toMatch(/BROKEN .*truncated.*; head \d+:[0-9a-f]{64}/);
        expect(
          runCli(['audit', 'verify', '--expect-head', `${head.seq}:${'0'.repeat(64)}`, '--db', db], keyed).code,
        ).toBe(1);
        expect(runCli(['audit', 'verify', '--expect-head', 'nonsense', '--db', db], keyed).code).toBe(2);

        const unknown = runCli(['audit', 'show', 'no-such-trace', '--db', db], keyed);
        expect(unknown.code).toBe(1);
        expect(unknown.stderr).toMatch(/no audit records for trace no-such-trace/);
      } finally {
        cleanup();
      }
    },
  );
});
