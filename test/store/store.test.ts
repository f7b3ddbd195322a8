import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { canonicalJson, redact } from '../../src/canonical.js';
import { AuditStore } from '../../src/store/sqlite/audit-store.js';
import { connect, DatabaseError, openDb } from '../../src/store/sqlite/db.js';
import { migrations } from '../../src/store/sqlite/migrations.js';
import { TokenStore } from '../../src/store/sqlite/token-store.js';
import { foreignDb, futureDb, midCorruptDb, noiseDb, realDb, truncatedDb } from '../helpers/bad-db.js';
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
});

/** What openDb throws for `file`: a DatabaseError whose message is one line naming the file. */
function refusal(file: string, opts: Parameters<typeof openDb>[1] = {}): string {
  let error: unknown;
  try {
    openDb(file, opts).close();
  } catch (e) {
    error = e;
  }
  expect(error).toBeInstanceOf(DatabaseError);
  const message = (error as DatabaseError).message;
  expect(message).not.toContain('\n');
  expect(message).toContain(file);
  return message;
}

describe('db refuses files it cannot use, with one sentence', () => {
  it('a database from a newer itguard', () => {
    const { dir, cleanup } = tempDir();
    try {
      const f = futureDb(join(dir, 'y.db'));
      expect(refusal(f)).toBe(
        `database ${f} was written by a newer itguard (schema 999 > ${migrations.length}); upgrade itguard or point --db at another file`,
      );
    } finally {
      cleanup();
    }
  });

  it('a file that is not SQLite, and a truncated one', () => {
    const { dir, cleanup } = tempDir();
    try {
      const noise = noiseDb(join(dir, 'noise.db'));
      expect(refusal(noise)).toBe(
        `database ${noise} is not an itguard database (file is not a SQLite database); point --db at another file or move it away`,
      );

      const half = truncatedDb(join(dir, 'half.db'));
      expect(refusal(half)).toMatch(
        /^database .*half\.db is corrupt \(.+\); restore it from a backup or move it away$/,
      );
      openDb(`${half}.whole`).close(); // the original still opens
    } finally {
      cleanup();
    }
  });

  it("another program's SQLite database is refused and left exactly as it was", () => {
    const { dir, cleanup } = tempDir();
    try {
      const f = foreignDb(join(dir, 'other.db'));
      const before = readFileSync(f);
      expect(refusal(f)).toBe(
        `database ${f} is not an itguard database (user_version 0, tables foo, no itguard meta table); point --db at another file or move it away`,
      );
      expect(readFileSync(f).equals(before)).toBe(true);
      const again = connect(f);
      expect(again.prepare("SELECT name FROM sqlite_master WHERE type = 'table'").pluck().all()).toEqual(['foo']);
      expect(again.pragma('journal_mode', { simple: true })).toBe('delete');
      again.close();
    } finally {
      cleanup();
    }
  });

  it('a database another process holds locked, after the busy timeout', () => {
    const { dir, cleanup } = tempDir();
    try {
      const f = realDb(join(dir, 'locked.db'), 1);
      const holder = connect(f);
      holder.exec('BEGIN EXCLUSIVE');
      try {
        const t = Date.now();
        expect(refusal(f, { busyTimeoutMs: 200 })).toBe(
          `database ${f} is locked by another process (SQLITE_BUSY after 200 ms); stop it or use another --db`,
        );
        expect(Date.now() - t).toBeGreaterThanOrEqual(150);
      } finally {
        holder.exec('ROLLBACK');
        holder.close();
      }
      openDb(f, { busyTimeoutMs: 200 }).close();
    } finally {
      cleanup();
    }
  });

  it('a page corrupted in the middle of the file is found at open, not by the first write', () => {
    const { dir, cleanup } = tempDir();
    try {
      const f = midCorruptDb(join(dir, 'mid.db'));
      expect(refusal(f)).toMatch(
        /^database .*mid\.db is corrupt \(quick_check: .+\); restore it from a backup or move it away$/,
      );
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

  it('a lone UTF-16 surrogate in a text column (an unknown tool name a client sent) does not break the chain', () => {
    // Found by test/fuzz: SQLite stores UTF-8, which has no lone surrogates, so the stored text differed from the
    // hashed one and `audit verify` called an untouched record altered. Text columns are made well-formed first.
    const db = openDb(':memory:');
    const audit = new AuditStore(db, undefined);
    audit.append({ event: 'call.denied', actor: 'a', tool: 'x\uD800', code: 'UNKNOWN_TOOL', sessionId: '\uDFFFs' });
    audit.append({ event: 'call.denied', actor: 'b\uDBFF', tool: '\uD83D\uDE00 ok', args: { q: '\uD800' } });
    expect(audit.verify()).toMatchObject({ ok: true, count: 2 });
    const [first, second] = audit.tail(2).sort((a, b) => a.seq - b.seq);
    expect(first!.tool).toBe('x\uFFFD');
    expect(first!.session_id).toBe('\uFFFDs');
    expect(second!.actor).toBe('b\uFFFD');
    expect(second!.tool).toBe('\uD83D\uDE00 ok'); // a pair stays whole
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
    audit.append({
      event: 'x',
      actor: 'a',
      args: { user: 'jdoe', password: 'hunter2', nested: { totp_code: '123456' } },
    });
    const row = audit.tail(1)[0]!;
    expect(row.args).not.toContain('hunter2');
    expect(row.args).not.toContain('123456');
    expect(JSON.parse(row.args!)).toEqual({
      nested: { totp_code: '[REDACTED]' },
      password: '[REDACTED]',
      user: 'jdoe',
    });
  });
});

describe('canonical', () => {
  it('sorts keys and drops undefined', () => {
    expect(canonicalJson({ b: 1, a: { d: 2, c: undefined } })).toBe('{"a":{"d":2},"b":1}');
    expect(redact({ token: 'x', list: [{ secret: 'y' }] })).toEqual({
      token: '[REDACTED]',
      list: [{ secret: '[REDACTED]' }],
    });
  });
});

describe('tokens', () => {
  it('stores only a hash, verifies, and revokes', () => {
    const db = openDb(':memory:');
    const tokens = new TokenStore(db);
    const { token, id } = tokens.create('helpdesk-agent', 'test');
    expect(JSON.stringify(db.prepare('SELECT * FROM tokens').all())).not.toContain(token);
    expect(tokens.verify(token)).toEqual({ id, principal: 'helpdesk-agent' });
    expect(tokens.verify(`${token}x`)).toBeUndefined();
    expect(tokens.revoke(id)).toBe(true);
    expect(tokens.verify(token)).toBeUndefined();
    expect(tokens.revoke(id)).toBe(false);
  });
});
