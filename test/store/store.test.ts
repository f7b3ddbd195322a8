import { join } from 'node:path';
import Database from 'better-sqlite3';
import { describe, expect, it } from 'vitest';
import { canonicalJson, redact } from '../../src/canonical.js';
import { AuditStore } from '../../src/store/audit-store.js';
import { openDb } from '../../src/store/db.js';
import { migrations } from '../../src/store/migrations.js';
import { TokenStore } from '../../src/store/token-store.js';
import { tempDir } from '../helpers/harness.js';

describe('db', () => {
  it('opens in WAL with busy_timeout and strict durability, and migrates to the latest user_version', () => {
    const { dir, cleanup } = tempDir();
    try {
      const db = openDb(join(dir, 'x.db'));
      expect(db.pragma('journal_mode', { simple: true })).toBe('wal');
      expect(db.pragma('busy_timeout', { simple: true })).toBe(5000);
      expect(db.pragma('synchronous', { simple: true })).toBe(2); // FULL
      expect(db.pragma('user_version', { simple: true })).toBe(migrations.length);
      db.close();
      const fast = openDb(join(dir, 'x.db'), { durability: 'fast' });
      expect(fast.pragma('synchronous', { simple: true })).toBe(1); // NORMAL
      fast.close();
    } finally {
      cleanup();
    }
  });

  it('refuses a database from a newer itguard', () => {
    const { dir, cleanup } = tempDir();
    try {
      const raw = new Database(join(dir, 'y.db'));
      raw.pragma(`user_version = ${migrations.length + 5}`);
      raw.close();
      expect(() => openDb(join(dir, 'y.db'))).toThrow(/newer than this itguard/);
    } finally {
      cleanup();
    }
  });
});

describe('audit chain', () => {
  it('verifies, and reports the first broken link after tampering (triggers bypassed)', () => {
    const db = openDb(':memory:');
    const audit = new AuditStore(db, undefined);
    for (let i = 0; i < 5; i++) audit.append({ event: 'test', actor: 'a', detail: { i } });
    const ok = audit.verify();
    expect(ok).toMatchObject({ ok: true, count: 5 });
    db.exec('DROP TRIGGER audit_no_update');
    db.prepare("UPDATE audit SET actor = 'mallory' WHERE seq = 3").run();
    expect(audit.verify()).toMatchObject({ ok: false, brokenAt: 3 });
  });

  it('detects a deleted record', () => {
    const db = openDb(':memory:');
    const audit = new AuditStore(db, undefined);
    for (let i = 0; i < 4; i++) audit.append({ event: 'test', actor: 'a' });
    db.exec('DROP TRIGGER audit_no_delete');
    db.prepare('DELETE FROM audit WHERE seq = 2').run();
    expect(audit.verify()).toMatchObject({ ok: false, brokenAt: 2 });
  });

  it('keyed chains need the key to verify', () => {
    const db = openDb(':memory:');
    new AuditStore(db, 'k1').append({ event: 'x', actor: 'a' });
    expect(new AuditStore(db, 'k1').verify().ok).toBe(true);
    expect(new AuditStore(db, 'k2').verify().ok).toBe(false);
    expect(new AuditStore(db, undefined).verify().ok).toBe(false);
  });

  it('stores arguments redacted', () => {
    const db = openDb(':memory:');
    const audit = new AuditStore(db, undefined);
    audit.append({ event: 'x', actor: 'a', args: { user: 'jdoe', password: 'hunter2', nested: { totp_code: '123456' } } });
    const row = audit.tail(1)[0]!;
    expect(row.args).not.toContain('hunter2');
    expect(row.args).not.toContain('123456');
    expect(JSON.parse(row.args!)).toEqual({ nested: { totp_code: '[REDACTED]' }, password: '[REDACTED]', user: 'jdoe' });
  });
});

describe('canonical', () => {
  it('sorts keys and drops undefined', () => {
    expect(canonicalJson({ b: 1, a: { d: 2, c: undefined } })).toBe('{"a":{"d":2},"b":1}');
    expect(redact({ token: 'x', list: [{ secret: 'y' }] })).toEqual({ token: '[REDACTED]', list: [{ secret: '[REDACTED]' }] });
  });
});

describe('tokens', () => {
  it('stores only a hash, verifies, and revokes', () => {
    const db = openDb(':memory:');
    const tokens = new TokenStore(db, new AuditStore(db, undefined));
    const { token, id } = tokens.create('helpdesk-agent', 'test');
    expect(JSON.stringify(db.prepare('SELECT * FROM tokens').all())).not.toContain(token);
    expect(tokens.verify(token)).toEqual({ id, principal: 'helpdesk-agent' });
    expect(tokens.verify(`${token}x`)).toBeUndefined();
    expect(tokens.revoke(id, 'test')).toBe(true);
    expect(tokens.verify(token)).toBeUndefined();
    expect(tokens.revoke(id, 'test')).toBe(false);
  });
});
