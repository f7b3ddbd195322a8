/**
 * The LDAP directory adapter against a real OpenLDAP slapd (ppolicy, memberof, ACLs; test/helpers/slapd.ts)
 * started on loopback by this file, and against an AD-shaped slapd for the active_directory flavor's attributes.
 */
import net from 'node:net';
import { inspect } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BackendError } from '../../src/core/backend.js';
import {
  escapeFilterValue,
  firstRdnValue,
  isLoopbackHost,
  LdapConfigError,
  LdapDirectory,
  type LdapDirectoryConfig,
} from '../../src/tools/directory/ldap.js';
import { startSlapd, type Slapd } from '../helpers/slapd.js';

const opts = () => ({ signal: new AbortController().signal });
const wopts = (requestId = `req-${Math.random()}`) => ({ ...opts(), requestId });

/** Every error message the adapter produced, checked at the end for passwords. */
const messages: string[] = [];
/** Every password the tests know of. */
const passwords = new Set<string>();

async function failure(p: Promise<unknown>): Promise<BackendError> {
  try {
    await p;
  } catch (e) {
    expect(e).toBeInstanceOf(BackendError);
    const be = e as BackendError;
    messages.push(be.message, JSON.stringify(be.details), JSON.stringify(be.toToolResult('t')));
    return be;
  }
  throw new Error('expected the call to fail');
}

/** A TCP server that accepts connections and never answers. */
async function blackHole(): Promise<{ url: string; connections: () => number; close: () => Promise<void> }> {
  const sockets: net.Socket[] = [];
  const srv = net.createServer((s) => sockets.push(s));
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  return {
    url: `ldap://127.0.0.1:${(srv.address() as net.AddressInfo).port}`,
    connections: () => sockets.length,
    close: () => {
      for (const s of sockets) s.destroy();
      return new Promise((r) => srv.close(() => r()));
    },
  };
}

const base: LdapDirectoryConfig = {
  url: 'ldap://127.0.0.1:1',
  bindDn: 'cn=itguard,ou=svc,dc=example,dc=com',
  bindPassword: 'Not-Th3-Real-One',
  baseDn: 'dc=example,dc=com',
  flavor: 'openldap',
};

describe('LdapDirectory configuration', () => {
  it('accepts ldap:// only for loopback hosts, and ldaps:// anywhere', () => {
    for (const url of ['ldap://127.0.0.1:389', 'ldap://localhost', 'ldap://[::1]:1389', 'ldaps://ldap.example.com']) {
      expect(() => new LdapDirectory({ ...base, url })).not.toThrow();
    }
    for (const url of ['ldap://ldap.example.com', 'ldap://10.0.0.5:389', 'ldap://127.0.0.1.nip.io']) {
      expect(() => new LdapDirectory({ ...base, url })).toThrow(/loopback/);
    }
    expect(() => new LdapDirectory({ ...base, url: 'http://127.0.0.1' })).toThrow(LdapConfigError);
    expect(() => new LdapDirectory({ ...base, url: 'ldaps://h/dc=example,dc=com' })).toThrow(/host and port only/);
    expect(() => new LdapDirectory({ ...base, url: 'ldaps://u:p@h' })).toThrow(/credentials/);
  });

  it('refuses an empty bind password, a filter without {user} or not a filter, an unknown flavor', () => {
    const key = (f: () => unknown) => {
      try {
        f();
      } catch (e) {
        return (e as LdapConfigError).key;
      }
    };
    expect(key(() => new LdapDirectory({ ...base, bindPassword: '' }))).toBe('bindPassword');
    expect(key(() => new LdapDirectory({ ...base, userFilter: '(uid=jdoe)' }))).toBe('userFilter');
    expect(key(() => new LdapDirectory({ ...base, userFilter: 'uid={user}))' }))).toBe('userFilter');
    expect(key(() => new LdapDirectory({ ...base, flavor: 'novell' as 'openldap' }))).toBe('flavor');
    expect(key(() => new LdapDirectory({ ...base, url: 'ldaps://h', caFile: '/nonexistent/ca.pem' }))).toBe('caFile');
  });

  it('helpers: loopback hosts, RFC 4515 escaping, the first RDN of a DN', () => {
    expect(['127.0.0.1', '127.1.2.3', '[::1]', 'localhost', 'LOCALHOST'].every(isLoopbackHost)).toBe(true);
    expect(
      ['10.0.0.1', '128.0.0.1', 'localhost.example.com', '127.0.0.1.nip.io', '::ffff:7f00:1'].some(isLoopbackHost),
    ).toBe(false);
    expect(escapeFilterValue('*)(uid=*\\\u0000')).toBe('\\2a\\29\\28uid=\\2a\\5c\\00');
    expect(firstRdnValue('cn=Domain Admins,ou=groups,dc=corp')).toBe('Domain Admins');
    expect(firstRdnValue('cn=Smith\\, John+uid=js,ou=x')).toBe('Smith, John');
    expect(firstRdnValue('cn=caf\\c3\\a9 \\f0\\9f\\94\\91,ou=x')).toBe('café 🔑');
    expect(firstRdnValue('cn=😀 team,ou=x')).toBe('😀 team');
  });

  it('keeps the bind password off the object', () => {
    const d = new LdapDirectory(base);
    expect(JSON.stringify(d)).not.toContain(base.bindPassword);
    expect(inspect(d, { depth: 5, showHidden: true })).not.toContain(base.bindPassword);
  });
});

describe('LdapDirectory on OpenLDAP (real slapd, ppolicy)', () => {
  let s: Slapd;
  let mk: (over?: Partial<LdapDirectoryConfig>) => LdapDirectory;
  let dir: LdapDirectory;

  beforeAll(async () => {
    s = await startSlapd('openldap');
    for (const p of [s.rootPassword, s.svcPassword, s.readerPassword, ...Object.values(s.passwords)]) passwords.add(p);
    mk = (over = {}) =>
      new LdapDirectory({
        url: s.url,
        bindDn: s.svcDn,
        bindPassword: s.svcPassword,
        baseDn: s.suffix,
        userBaseDn: s.peopleDn,
        groupBaseDn: s.groupsDn,
        flavor: 'openldap',
        timeoutMs: 5000,
        ...over,
      });
    dir = mk();
  });
  afterAll(async () => {
    await s?.close();
  });

  /** An entry as the root DN sees it (operational attributes included). */
  const entry = (uid: string) =>
    s.asRoot(async (c) => {
      const r = await c.search(s.dn(uid), { scope: 'base', attributes: ['*', '+'] });
      return r.searchEntries[0]!;
    });
  const csns = () =>
    s.asRoot(async (c) => {
      const r = await c.search(s.suffix, { scope: 'sub', attributes: ['entryCSN'] });
      return Object.fromEntries(r.searchEntries.map((e) => [e.dn, e.entryCSN]));
    });

  it('finds a user by uid: names, mail, recovery address, groups from memberOf and member/memberUid', async () => {
    expect(await dir.get('jdoe', opts())).toEqual({
      username: 'jdoe',
      displayName: 'John Doe',
      email: 'jdoe@example.com',
      groups: ['developers', 'staff'],
      recovery: { kind: 'email', address: 'jdoe@example.com' },
      disabled: false,
      mustChangePassword: false,
    });
  });

  it('finds a user by mail, with a groupOfUniqueNames membership', async () => {
    const u = await dir.get('asmith@example.com', opts());
    expect(u?.username).toBe('asmith');
    expect(u?.groups).toEqual(['staff', 'vpn']);
  });

  it('sees the admins group in every membership mode', async () => {
    for (const membership of ['memberOf', 'search', 'both'] as const) {
      const u = await mk({ membership }).get('aadmin', opts());
      expect(u?.groups, membership).toContain('admins');
    }
    // memberOf (the overlay) covers groupOfNames only; the search also finds posixGroup and groupOfUniqueNames.
    expect((await mk({ membership: 'memberOf' }).get('jdoe', opts()))?.groups).toEqual(['staff']);
    expect((await mk({ membership: 'search' }).get('asmith', opts()))?.groups).toEqual(['staff', 'vpn']);
  });

  it('reads disabled from pwdAccountLockedTime, or from a configured attribute', async () => {
    expect((await dir.get('bgone', opts()))?.disabled).toBe(true);
    expect((await dir.get('cfrozen', opts()))?.disabled).toBe(false);
    const d = mk({ disabledWhen: { attribute: 'employeeType', values: ['Disabled'] } });
    expect((await d.get('cfrozen', opts()))?.disabled).toBe(true);
    expect((await d.get('jdoe', opts()))?.disabled).toBe(false);
  });

  it('uses the recovery attribute: a phone number is an SMS channel, none is undefined', async () => {
    const d = mk({ recoveryAttribute: 'mobile' });
    expect((await d.get('jdoe', opts()))?.recovery).toEqual({ kind: 'sms', address: '+1 555 0100 34' });
    expect((await d.get('asmith', opts()))?.recovery).toBeUndefined();
  });

  it('escapes filter values: injection attempts find nobody', async () => {
    // What an unescaped value would have done: a wildcard matches every user.
    const raw = await s.asRoot((c) => c.search(s.peopleDn, { filter: '(|(uid=*)(mail=*))' }));
    expect(raw.searchEntries.length).toBeGreaterThan(3);
    for (const evil of [
      '*',
      '*)(uid=*',
      'jdoe)(|(uid=*',
      '*)(|(objectClass=*',
      'j*',
      '*@example.com',
      '\\2a',
      'x\u0000',
    ]) {
      expect(await dir.get(evil, opts()), evil).toBeUndefined();
    }
    expect(await dir.get('nobody', opts())).toBeUndefined();
    expect(await dir.get('', opts())).toBeUndefined();
  });

  it('lockForReset: the old password stops binding, pwdReset is TRUE, the new one is hashed and unknown', async () => {
    const old = s.passwords.mlopez!;
    expect(await s.canBind(s.dn('mlopez'), old)).toBe(true);
    await dir.lockForReset('mlopez', wopts('lock-1'));
    expect(await s.canBind(s.dn('mlopez'), old)).toBe(false);
    const e = await entry('mlopez');
    expect(e.pwdReset).toBe('TRUE');
    expect(String(e.userPassword)).toMatch(/^\{SSHA\}/); // ppolicy hashed the cleartext the adapter sent
    expect((await dir.get('mlopez', opts()))?.mustChangePassword).toBe(true);
    // The same request id again: not repeated. A new one: a new random password (harmless).
    await dir.lockForReset('mlopez', wopts('lock-1'));
    expect(String((await entry('mlopez')).userPassword)).toBe(String(e.userPassword));
    await dir.lockForReset('mlopez', wopts('lock-2'));
    expect(String((await entry('mlopez')).userPassword)).not.toBe(String(e.userPassword));
  });

  it('setPassword: the user binds with the new password and pwdReset is cleared', async () => {
    const chosen = 'Chosen-by-Maria-2026';
    passwords.add(chosen);
    await dir.setPassword('mlopez', chosen, opts());
    expect(await s.canBind(s.dn('mlopez'), chosen)).toBe(true);
    expect((await entry('mlopez')).pwdReset).toBeUndefined();
    expect((await dir.get('mlopez', opts()))?.mustChangePassword).toBe(false);
  });

  it('setPassword refused by the password policy: not retryable, and the password is not in the message', async () => {
    const short = 'Sh0rt';
    passwords.add(short);
    const e = await failure(dir.setPassword('mlopez', short, opts()));
    expect(e.retryable).toBe(false);
    expect(e.message).toMatch(/constraint violation.*password policy/);
    expect(e.message).not.toContain(short);
    expect(await s.canBind(s.dn('mlopez'), 'Chosen-by-Maria-2026')).toBe(true);
  });

  it('writes to a user that does not exist are refused', async () => {
    const e = await failure(dir.lockForReset('nobody', wopts()));
    expect(e.retryable).toBe(false);
    expect(e.message).toMatch(/no user nobody/);
    await failure(dir.setPassword('*', 'Whatever-123', opts()));
  });

  it('probe: every check passes and nothing in the directory changes', async () => {
    const before = await csns();
    const r = await dir.probe(opts());
    expect(r.ok).toBe(true);
    expect(r.backend).toBe('ldap');
    expect(r.checks.map((c) => c.name)).toEqual([
      'bind',
      'whoami',
      'read users',
      'read recovery attribute',
      'read groups',
      'write password attributes',
    ]);
    expect(r.checks.every((c) => c.ok)).toBe(true);
    expect(r.checks.find((c) => c.name === 'whoami')?.detail).toContain(`dn:${s.svcDn}`);
    expect(r.checks.at(-1)?.detail).toMatch(/nothing changed/);
    expect(await csns()).toEqual(before);
  });

  it('probe with a wrong bind password: ok false, naming bind, without the password', async () => {
    const wrong = 'Wrong-Bind-Passw0rd';
    passwords.add(wrong);
    const r = await mk({ bindPassword: wrong }).probe(opts());
    expect(r.ok).toBe(false);
    expect(r.checks).toHaveLength(1);
    expect(r.checks[0]).toMatchObject({ name: 'bind', ok: false });
    expect(r.checks[0]!.detail).toMatch(/bind as cn=itguard.*invalid credentials/);
    messages.push(JSON.stringify(r));
  });

  it('probe as an account that may read but not write passwords: the write check fails, nothing changes', async () => {
    const before = await csns();
    const r = await mk({ bindDn: s.readerDn, bindPassword: s.readerPassword }).probe(opts());
    expect(r.ok).toBe(false);
    const failed = r.checks.filter((c) => !c.ok);
    expect(failed.map((c) => c.name)).toEqual(['write password attributes']);
    expect(failed[0]!.detail).toMatch(/insufficient access/);
    expect(await csns()).toEqual(before);
    messages.push(JSON.stringify(r));
  });

  it('a wrong bind password or missing write access: BackendError, not retryable, naming what failed', async () => {
    const wrong = 'Wrong-Bind-Passw0rd';
    const e = await failure(mk({ bindPassword: wrong }).get('jdoe', opts()));
    expect(e.retryable).toBe(false);
    expect(e.message).toMatch(/bind as cn=itguard,ou=svc,dc=example,dc=com failed: invalid credentials \(49\)/);
    const reader = mk({ bindDn: s.readerDn, bindPassword: s.readerPassword });
    const w = await failure(reader.lockForReset('asmith', wopts()));
    expect(w.retryable).toBe(false);
    expect(w.message).toMatch(/modify of uid=asmith,ou=people,dc=example,dc=com failed: insufficient access \(50\)/);
    expect(await s.canBind(s.dn('asmith'), s.passwords.asmith!)).toBe(true);
    await failure(reader.setPassword('asmith', 'Reader-Tried-1234', opts()));
    passwords.add('Reader-Tried-1234');
  });

  it('honours the signal: an aborted call makes no connection, an abort mid-call returns at once', async () => {
    const hole = await blackHole();
    try {
      const d = mk({ url: hole.url, timeoutMs: 10_000 });
      const pre = new AbortController();
      pre.abort('user cancelled');
      const e1 = await failure(d.get('jdoe', { signal: pre.signal }));
      expect(e1.message).toMatch(/aborted/);
      await failure(d.lockForReset('jdoe', { signal: pre.signal, requestId: 'x' }));
      await expect(d.probe({ signal: pre.signal })).rejects.toThrow(/aborted/);
      expect(hole.connections()).toBe(0);

      const ac = new AbortController();
      setTimeout(() => ac.abort('kill switch'), 100);
      const t0 = Date.now();
      const e2 = await failure(d.lockForReset('jdoe', { signal: ac.signal, requestId: 'y' }));
      expect(Date.now() - t0).toBeLessThan(2000);
      expect(e2.retryable).toBe(false);
      expect(e2.message).toMatch(/aborted: kill switch/);
      expect(e2.details.outcome_unknown).toBe(true);
      expect(hole.connections()).toBe(1);
    } finally {
      await hole.close();
    }
  });

  it('times out: a server that never answers is a retryable BackendError', async () => {
    const hole = await blackHole();
    try {
      const d = mk({ url: hole.url, timeoutMs: 300 });
      const t0 = Date.now();
      const e = await failure(d.get('jdoe', opts()));
      expect(Date.now() - t0).toBeLessThan(2000);
      expect(e.retryable).toBe(true);
      expect(e.message).toMatch(/timed out after 300 ms/);
      const r = await d.probe(opts());
      expect(r.ok).toBe(false);
      expect(r.checks[0]!.name).toBe('connect');
    } finally {
      await hole.close();
    }
  });

  it('a stopped server: retryable BackendError, probe names connect; back when it is', async () => {
    await s.stop();
    try {
      const e = await failure(dir.get('jdoe', opts()));
      expect(e.retryable).toBe(true);
      expect(e.message).toMatch(/cannot reach ldap:\/\/127\.0\.0\.1:\d+ \(ECONNREFUSED\)/);
      expect((await failure(dir.lockForReset('jdoe', wopts()))).retryable).toBe(true);
      expect((await failure(dir.setPassword('jdoe', 'Never-Sent-123', opts()))).retryable).toBe(true);
      const r = await dir.probe(opts());
      expect(r.ok).toBe(false);
      expect(r.checks[0]).toMatchObject({ name: 'connect', ok: false });
    } finally {
      await s.start();
    }
    expect((await dir.get('jdoe', opts()))?.username).toBe('jdoe');
  });
});

describe('LdapDirectory over ldaps:// (real slapd with a test CA)', () => {
  let s: Slapd;
  let mk: (over?: Partial<LdapDirectoryConfig>) => LdapDirectory;
  beforeAll(async () => {
    s = await startSlapd('openldap', { tls: true });
    for (const p of [s.rootPassword, s.svcPassword, s.readerPassword, ...Object.values(s.passwords)]) passwords.add(p);
    mk = (over = {}) =>
      new LdapDirectory({
        url: s.ldapsUrl!,
        bindDn: s.svcDn,
        bindPassword: s.svcPassword,
        baseDn: s.suffix,
        flavor: 'openldap',
        timeoutMs: 5000,
        ...over,
      });
  });
  afterAll(async () => {
    await s?.close();
  });

  it('verifies the server against caFile, then works as over ldap://', async () => {
    const d = mk({ caFile: s.caFile! });
    expect((await d.get('aadmin', opts()))?.groups).toEqual(['admins', 'staff']);
    expect((await d.probe(opts())).ok).toBe(true);
    await d.lockForReset('asmith', wopts());
    expect(await s.canBind(s.dn('asmith'), s.passwords.asmith!)).toBe(false);
  });

  it('without the CA the certificate is refused: not retryable, and probe names connect', async () => {
    const d = mk();
    const e = await failure(d.get('jdoe', opts()));
    expect(e.retryable).toBe(false);
    expect(e.message).toMatch(/TLS verification of ldaps:\/\/127\.0\.0\.1:\d+ failed/);
    const r = await d.probe(opts());
    expect(r.checks).toEqual([expect.objectContaining({ name: 'connect', ok: false })]);
  });
});

describe('LdapDirectory, active_directory flavor (AD-shaped slapd: attributes, not AD behaviour)', () => {
  let s: Slapd;
  let dir: LdapDirectory;
  beforeAll(async () => {
    s = await startSlapd('ad');
    for (const p of [s.rootPassword, s.svcPassword, s.readerPassword, ...Object.values(s.passwords)]) passwords.add(p);
    dir = new LdapDirectory({
      url: s.url,
      bindDn: s.svcDn,
      bindPassword: s.svcPassword,
      baseDn: s.suffix,
      userBaseDn: s.peopleDn,
      groupBaseDn: s.groupsDn,
      flavor: 'active_directory',
      membership: 'memberOf', // slapd has no LDAP_MATCHING_RULE_IN_CHAIN
      timeoutMs: 5000,
    });
  });
  afterAll(async () => {
    await s?.close();
  });
  const pwd = (u: string) =>
    s.asRoot(async (c) => {
      const r = await c.search(s.dn(u), {
        scope: 'base',
        attributes: ['unicodePwd', 'pwdLastSet'],
        explicitBufferAttributes: ['unicodePwd'],
      });
      return r.searchEntries[0]!;
    });

  it('finds users by sAMAccountName, mail or userPrincipalName; disabled from userAccountControl bit 2', async () => {
    const u = await dir.get('jdoe', opts());
    expect(u).toMatchObject({ username: 'jdoe', displayName: 'John Doe', groups: ['staff'], disabled: false });
    expect((await dir.get('jdoe@example.com', opts()))?.username).toBe('jdoe');
    expect((await dir.get('jdoe@corp.example.com', opts()))?.username).toBe('jdoe');
    expect((await dir.get('aadmin', opts()))?.groups).toEqual(['Domain Admins', 'staff']);
    expect((await dir.get('bgone', opts()))?.disabled).toBe(true);
    expect(await dir.get('*)(sAMAccountName=*', opts())).toBeUndefined();
  });

  it('lockForReset writes unicodePwd (quoted UTF-16LE) and pwdLastSet 0; setPassword sets it and pwdLastSet -1', async () => {
    await dir.lockForReset('mlopez', wopts());
    let e = await pwd('mlopez');
    const locked = (e.unicodePwd as Buffer).toString('utf16le');
    expect(locked).toMatch(/^"[A-Za-z0-9_-]{43}-Aa1"$/);
    expect(e.pwdLastSet).toBe('0');
    expect((await dir.get('mlopez', opts()))?.mustChangePassword).toBe(true);

    const chosen = 'Ünïcode-Pässword-1';
    passwords.add(chosen);
    await dir.setPassword('mlopez', chosen, opts());
    e = await pwd('mlopez');
    expect(e.unicodePwd).toEqual(Buffer.from(`"${chosen}"`, 'utf16le'));
    expect(e.pwdLastSet).toBe('-1');
    expect((await dir.get('mlopez', opts()))?.mustChangePassword).toBe(false);
  });

  it('probe reads allowedAttributesEffective for the write check', async () => {
    const r = await dir.probe(opts());
    expect(r.checks.map((c) => [c.name, c.ok])).toEqual([
      ['bind', true],
      ['whoami', true],
      ['read users', true],
      ['read recovery attribute', true],
      ['read groups', true],
      ['write password attributes', true],
    ]);
    expect(r.checks.at(-1)?.detail).toMatch(/pwdLastSet writable.*Reset Password right/);
  });
});

describe('error messages', () => {
  it('never contain a password', () => {
    expect(messages.length).toBeGreaterThan(10);
    const all = messages.join('\n');
    for (const p of passwords) expect(all).not.toContain(p);
  });
});
