/**
 * The LDAP / Active Directory adapter of the directory port (DESIGN §8 "Backend details"), built on ldapts.
 *
 * One connection per call: connect, bind as the service account (never the root DN), do the work, unbind. Every
 * call races the caller's AbortSignal and a deadline (`timeoutMs`); on either the socket is destroyed at once.
 * Filter values are escaped (RFC 4515); `ldap://` is accepted only for loopback hosts; passwords never appear in
 * an error message (every message is scrubbed of the secrets the call knows, as a second line of defence).
 *
 * Users: by `userFilter` (default `(uid={user})` / `(sAMAccountName={user})`) or by mail. Groups: the cn of each
 * group from `memberOf`, from a `member` / `uniqueMember` / `memberUid` search under groupBaseDn (AD: the in-chain
 * rule, so nested groups count), or both (the default: more groups only ever means more refusals upstream).
 */
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import net from 'node:net';
import tls from 'node:tls';
import { Attribute, Change, Client, Filter, FilterParser, ResultCodeError, type Entry } from 'ldapts';
import { isLoopbackHost } from '../../loopback.js';
import { BackendError, type CallOpts, type ProbeReport, type WriteOpts } from '../../core/backend.js';
import type { DirectoryPort, DirectoryUser } from '../../core/ports/directory.js';

export interface LdapDirectoryConfig {
  /** `ldaps://host[:port]`; `ldap://` only for loopback hosts (127.0.0.0/8, ::1, localhost). */
  url: string;
  /** The service account itguard binds as (never the root DN: ppolicy and ACLs must apply to it). */
  bindDn: string;
  /** Passed in by the caller (from `password_env`); never read from the policy, never logged. */
  bindPassword: string;
  baseDn: string;
  /** Default baseDn. */
  userBaseDn?: string;
  /** Default baseDn. */
  groupBaseDn?: string;
  flavor: 'openldap' | 'active_directory';
  /** A filter with `{user}` where the escaped name goes. Default `(uid={user})` / `(sAMAccountName={user})`. */
  userFilter?: string;
  /** The attribute holding the username. Default uid / sAMAccountName. */
  usernameAttribute?: string;
  /** Where reset links go. Default mail; a value with `@` is an e-mail address, a phone-like one an SMS number. */
  recoveryAttribute?: string;
  /** Where group membership is read. Default both. */
  membership?: 'memberOf' | 'search' | 'both';
  /**
   * An extra "disabled" marker beside the flavor's own (OpenLDAP: pwdAccountLockedTime present; AD:
   * userAccountControl bit 2): the attribute present, or holding one of `values` (case-insensitive).
   */
  disabledWhen?: { attribute: string; values?: string[] };
  /** PEM file of the CA(s) that sign the server's certificate (ldaps://). Default: Node's bundled CAs. */
  caFile?: string;
  /** Deadline of each call, connect included. Default 10000. */
  timeoutMs?: number;
}

/** A configuration mistake, found at construction; `key` is the camelCase config key. */
export class LdapConfigError extends Error {
  constructor(
    readonly key: string,
    message: string,
  ) {
    super(message);
    this.name = 'LdapConfigError';
  }
}

const DEFAULT_TIMEOUT_MS = 10_000;
const WHOAMI_OID = '1.3.6.1.4.1.4203.1.11.3';
/** AD's LDAP_MATCHING_RULE_IN_CHAIN: membership through nested groups. */
const AD_IN_CHAIN = '1.2.840.113556.1.4.1941';
const UAC_ACCOUNTDISABLE = 0x2;
const MAX_NAME = 256;
const MAX_PASSWORD = 512;
/** In-process memory of lockForReset request ids already applied (a repeat would be harmless anyway). */
const MEMO_SIZE = 1000;

const RESULT_LABELS: Record<number, string> = {
  1: 'operations error',
  3: 'time limit exceeded',
  4: 'size limit exceeded',
  8: 'strong authentication required',
  11: 'administrative limit exceeded',
  13: 'confidentiality (TLS) required',
  16: 'no such attribute',
  17: 'undefined attribute type',
  19: 'constraint violation',
  21: 'invalid attribute syntax',
  32: 'no such object',
  34: 'invalid DN syntax',
  48: 'inappropriate authentication',
  49: 'invalid credentials',
  50: 'insufficient access',
  51: 'server busy',
  52: 'server unavailable',
  53: 'unwilling to perform',
  65: 'object class violation',
  80: 'other',
};
const RETRYABLE_RESULTS = new Set([3, 11, 51, 52]);
const RETRYABLE_SOCKET = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ECONNABORTED',
  'ETIMEDOUT',
  'EHOSTUNREACH',
  'EHOSTDOWN',
  'ENETUNREACH',
  'ENETDOWN',
  'EPIPE',
  'EAI_AGAIN',
  'ENOTFOUND',
]);

export { isLoopbackHost } from '../../loopback.js';

/** RFC 4515 escaping of one assertion value (`*`, `(`, `)`, `\`, NUL). */
export const escapeFilterValue = (v: string): string => Filter.escape(v);

const hasControl = (s: string): boolean => [...s].some((ch) => ch.charCodeAt(0) < 0x20 || ch.charCodeAt(0) === 0x7f);
const validName = (s: unknown): s is string =>
  typeof s === 'string' && s.length > 0 && s.length <= MAX_NAME && !hasControl(s);

/** The value of a DN's first RDN (`cn=Smith\, John,ou=groups,...` → `Smith, John`), escapes decoded. */
export function firstRdnValue(dn: string): string | undefined {
  const eq = dn.indexOf('=');
  if (eq < 0) return undefined;
  const chars = [...dn.slice(eq + 1)]; // code points, so a surrogate pair stays whole
  const bytes: number[] = [];
  for (let i = 0; i < chars.length; i++) {
    const ch = chars[i]!;
    if (ch === ',' || ch === '+') break;
    if (ch === '\\' && i + 1 < chars.length) {
      const hex = `${chars[i + 1]}${chars[i + 2] ?? ''}`;
      if (/^[0-9a-fA-F]{2}$/.test(hex)) {
        bytes.push(parseInt(hex, 16));
        i += 2;
      } else {
        bytes.push(...Buffer.from(chars[i + 1]!, 'utf8'));
        i += 1;
      }
      continue;
    }
    bytes.push(...Buffer.from(ch, 'utf8'));
  }
  return Buffer.from(bytes).toString('utf8').trim() || undefined;
}

type Values = string[];
/** An entry's attributes by lower-cased name, every value a string. */
function attrsOf(e: Entry): Map<string, Values> {
  const m = new Map<string, Values>();
  for (const [k, v] of Object.entries(e)) {
    if (k === 'dn') continue;
    const list = Array.isArray(v) ? v : [v];
    const vals = list.map((x) => (Buffer.isBuffer(x) ? x.toString('utf8') : String(x)));
    if (vals.length) m.set(k.toLowerCase(), [...(m.get(k.toLowerCase()) ?? []), ...vals]);
  }
  return m;
}
const first = (m: Map<string, Values>, a: string): string | undefined => m.get(a.toLowerCase())?.[0];

function recoveryOf(address: string | undefined): DirectoryUser['recovery'] {
  const a = address?.trim();
  if (!a) return undefined;
  if (/^[^@\s]+@[^@\s]+$/.test(a)) return { kind: 'email', address: a };
  if (/^\+?[0-9][0-9 ().-]{5,}$/.test(a)) return { kind: 'sms', address: a };
  return undefined;
}

/** The bind password of each directory, kept off the object (not a property, so never in a dump of it). */
const SECRETS = new WeakMap<LdapDirectory, string>();

/** What error mapping needs to know about a directory. */
interface ErrorContext {
  url: string;
  /** Scrubbed out of every message. */
  secrets: string[];
}

/** One call's connection, cancelled by the caller's signal or the deadline (the socket is destroyed at once). */
class Conn {
  readonly client: Client;
  private readonly sockets = new Set<net.Socket>();
  private readonly stopped: Promise<never>;
  private readonly timer: NodeJS.Timeout;
  private readonly onAbort: () => void;
  /** Set once the call was aborted or timed out; every later step fails with it. */
  private failure: BackendError | undefined;

  constructor(
    private readonly ctx: ErrorContext,
    private readonly signal: AbortSignal,
    what: string,
    private readonly write: boolean,
    timeoutMs: number,
    tlsOptions: tls.ConnectionOptions | undefined,
  ) {
    const track = <S extends net.Socket>(s: S): S => (this.sockets.add(s), s);
    this.client = new Client({
      url: ctx.url,
      timeout: timeoutMs,
      connectTimeout: timeoutMs,
      // ldapts switches to TLS whenever tlsOptions has a value, so ldap:// gets none
      ...(tlsOptions ? { tlsOptions } : {}),
      createConnection: ((port: number, host: string) => track(net.connect(port, host))) as typeof net.connect,
      createSecureConnection: ((port: number, host: string, o: tls.ConnectionOptions) =>
        track(tls.connect(port, host, o))) as typeof tls.connect,
    });
    let reject!: (e: BackendError) => void;
    this.stopped = new Promise<never>((_, r) => (reject = r));
    this.stopped.catch(() => undefined);
    const outcome = write ? { outcome_unknown: true } : undefined;
    const fail = (e: BackendError) => {
      if (this.failure) return;
      this.failure = e;
      reject(e);
      this.destroy();
    };
    this.onAbort = () =>
      fail(new BackendError(`LDAP ${what} was aborted: ${String(signal.reason ?? 'cancelled')}.`, false, outcome));
    this.timer = setTimeout(
      () => fail(new BackendError(`LDAP ${what} timed out after ${timeoutMs} ms (${ctx.url}).`, true, outcome)),
      timeoutMs,
    );
    signal.addEventListener('abort', this.onAbort, { once: true });
    if (signal.aborted) this.onAbort();
  }

  /** Runs one LDAP operation; its failure becomes a BackendError naming `step`. */
  async step<T>(step: string, fn: (c: Client) => Promise<T>, secrets: string[] = []): Promise<T> {
    if (this.failure) throw this.failure;
    const p = fn(this.client);
    p.catch(() => undefined); // if the abort or deadline wins the race, the operation's own rejection is dropped
    try {
      return await Promise.race([p, this.stopped]);
    } catch (e) {
      const ctx = { ...this.ctx, secrets: [...this.ctx.secrets, ...secrets] };
      throw toBackendError(ctx, step, e, this.write && /^modify/.test(step));
    }
  }

  bind(dn: string, password: string): Promise<void> {
    return this.step(`bind as ${dn}`, (c) => c.bind(dn, password));
  }

  close(): void {
    clearTimeout(this.timer);
    this.signal.removeEventListener('abort', this.onAbort);
    if (this.failure) return; // already destroyed
    this.client.unbind().catch(() => undefined);
    // unbind writes its request then ends the socket; anything still open after a moment is destroyed.
    setTimeout(() => this.destroy(), 1000).unref();
  }

  private destroy(): void {
    for (const s of this.sockets) s.destroy();
    this.sockets.clear();
  }
}

/** Any failure as a BackendError naming what failed; the context's secrets are scrubbed out of the message. */
function toBackendError(ctx: ErrorContext, step: string, e: unknown, inFlightWrite: boolean): BackendError {
  if (e instanceof BackendError) return e;
  const scrub = (s: string) =>
    ctx.secrets.filter((x) => x.length > 0).reduce((m, x) => m.split(x).join('[redacted]'), s);
  if (e instanceof ResultCodeError) {
    // The server answered: the operation was refused, its outcome is known.
    const label = RESULT_LABELS[e.code] ?? `result code ${e.code}`;
    const diag = e.message && e.message.toLowerCase() !== label ? `: ${firstLine(e.message)}` : '';
    let msg = `LDAP ${step} failed: ${label} (${e.code})${diag}`;
    if (e.code === 19 && /^modify/.test(step)) msg += ' (the directory password policy refused the password)';
    return new BackendError(scrub(msg), RETRYABLE_RESULTS.has(e.code), { ldap_code: e.code });
  }
  // A connection failure during a modify: it may or may not have been applied.
  const outcome = inFlightWrite ? { outcome_unknown: true } : undefined;
  const err = e as NodeJS.ErrnoException;
  const code = typeof err?.code === 'string' ? err.code : undefined;
  const text = err instanceof Error ? err.message : String(e);
  if (code && RETRYABLE_SOCKET.has(code)) {
    return new BackendError(scrub(`LDAP ${step} failed: cannot reach ${ctx.url} (${code}).`), true, outcome);
  }
  if (code && /CERT|TLS|SSL|SELF_SIGNED|UNABLE_TO_|HOSTNAME|ALTNAME/i.test(code)) {
    return new BackendError(scrub(`LDAP ${step} failed: TLS verification of ${ctx.url} failed (${code}).`), false);
  }
  if (/timed? ?out|Connection closed|Socket error|socket hang up/i.test(text)) {
    const m = `LDAP ${step} failed: connection to ${ctx.url} lost (${firstLine(text)}).`;
    return new BackendError(scrub(m), true, outcome);
  }
  return new BackendError(scrub(`LDAP ${step} failed: ${firstLine(text)}`), false, outcome);
}

export class LdapDirectory implements DirectoryPort {
  readonly kind = 'ldap';
  readonly url: string;
  readonly bindDn: string;
  readonly timeoutMs: number;
  private readonly flavor: 'openldap' | 'active_directory';
  private readonly userBaseDn: string;
  private readonly groupBaseDn: string;
  private readonly userFilter: string;
  private readonly usernameAttr: string;
  private readonly recoveryAttr: string;
  private readonly membership: 'memberOf' | 'search' | 'both';
  private readonly disabledWhen: { attribute: string; values?: string[] } | undefined;
  private readonly tlsOptions: tls.ConnectionOptions | undefined;
  private readonly secure: boolean;
  private readonly loopback: boolean;
  private readonly memo = new Set<string>();

  constructor(cfg: LdapDirectoryConfig) {
    if (cfg.flavor !== 'openldap' && cfg.flavor !== 'active_directory') {
      throw new LdapConfigError('flavor', `flavor must be openldap or active_directory, not ${String(cfg.flavor)}`);
    }
    this.flavor = cfg.flavor;
    let u: URL;
    try {
      u = new URL(cfg.url);
    } catch {
      throw new LdapConfigError('url', `url is not a URL: ${cfg.url}`);
    }
    if (u.protocol !== 'ldap:' && u.protocol !== 'ldaps:') {
      throw new LdapConfigError('url', `url must be ldaps:// (or ldap:// on loopback), not ${u.protocol}//`);
    }
    if (u.username || u.password) throw new LdapConfigError('url', 'url must not carry credentials');
    if ((u.pathname && u.pathname !== '/') || u.search || u.hash) {
      throw new LdapConfigError('url', 'url takes a scheme, host and port only (put the base DN in baseDn)');
    }
    if (!u.hostname) throw new LdapConfigError('url', 'url has no host');
    this.secure = u.protocol === 'ldaps:';
    this.loopback = isLoopbackHost(u.hostname);
    if (!this.secure && !this.loopback) {
      throw new LdapConfigError(
        'url',
        `plain ldap:// is accepted only for loopback hosts; use ldaps://${u.host} (got ${u.hostname})`,
      );
    }
    this.url = `${u.protocol}//${u.host}`;
    for (const k of ['bindDn', 'baseDn'] as const) {
      if (typeof cfg[k] !== 'string' || !cfg[k].trim()) throw new LdapConfigError(k, `${k} is required`);
    }
    // An empty password makes a simple bind "unauthenticated" (RFC 4513 §5.1.2): anonymous on many servers.
    if (typeof cfg.bindPassword !== 'string' || cfg.bindPassword.length === 0) {
      throw new LdapConfigError('bindPassword', 'bindPassword is empty (is the password environment variable set?)');
    }
    this.bindDn = cfg.bindDn.trim();
    SECRETS.set(this, cfg.bindPassword);
    this.userBaseDn = cfg.userBaseDn?.trim() || cfg.baseDn.trim();
    this.groupBaseDn = cfg.groupBaseDn?.trim() || cfg.baseDn.trim();
    const ad = this.flavor === 'active_directory';
    this.userFilter = cfg.userFilter ?? (ad ? '(sAMAccountName={user})' : '(uid={user})');
    if (!this.userFilter.includes('{user}')) {
      throw new LdapConfigError('userFilter', 'userFilter must contain {user}');
    }
    try {
      FilterParser.parseString(this.userFilter.replaceAll('{user}', 'x'));
    } catch (e) {
      throw new LdapConfigError('userFilter', `userFilter is not an LDAP filter: ${(e as Error).message}`);
    }
    this.usernameAttr = cfg.usernameAttribute ?? (ad ? 'sAMAccountName' : 'uid');
    this.recoveryAttr = cfg.recoveryAttribute ?? 'mail';
    this.membership = cfg.membership ?? 'both';
    if (!['memberOf', 'search', 'both'].includes(this.membership)) {
      throw new LdapConfigError('membership', 'membership must be memberOf, search or both');
    }
    this.disabledWhen = cfg.disabledWhen;
    this.timeoutMs = cfg.timeoutMs ?? DEFAULT_TIMEOUT_MS;
    if (!Number.isInteger(this.timeoutMs) || this.timeoutMs <= 0) {
      throw new LdapConfigError('timeoutMs', 'timeoutMs must be a positive integer');
    }
    if (cfg.caFile && !this.secure) throw new LdapConfigError('caFile', 'caFile is for ldaps:// URLs');
    this.tlsOptions = this.secure ? { minVersion: 'TLSv1.2' } : undefined;
    if (cfg.caFile && this.tlsOptions) {
      try {
        this.tlsOptions.ca = readFileSync(cfg.caFile);
      } catch (e) {
        throw new LdapConfigError('caFile', `cannot read caFile ${cfg.caFile}: ${(e as NodeJS.ErrnoException).code}`);
      }
    }
  }

  // --- the port ---------------------------------------------------------------------------------------------

  async get(user: string, o: CallOpts): Promise<DirectoryUser | undefined> {
    if (!validName(user)) return undefined;
    return this.session('user lookup', o, false, async (c) => {
      const entry = await this.findUser(c, user, true);
      return entry ? this.toUser(entry, await this.groupsOf(c, entry)) : undefined;
    });
  }

  async lockForReset(username: string, o: WriteOpts): Promise<void> {
    const key = `${o.requestId}\u0000${username}`;
    if (o.requestId && this.memo.has(key)) return;
    this.requireSecureWrite();
    const random = `${randomBytes(32).toString('base64url')}-Aa1`; // the suffix meets character-class rules
    await this.session('lock for reset', o, true, async (c) => {
      const entry = await this.requireUser(c, username);
      const changes =
        this.flavor === 'openldap'
          ? [replace('userPassword', [random]), replace('pwdReset', ['TRUE'])]
          : [replace('unicodePwd', [adPassword(random)]), replace('pwdLastSet', ['0'])];
      await c.step(`modify of ${entry.dn}`, (cl) => cl.modify(entry.dn, changes), [random]);
    });
    if (o.requestId) this.remember(key);
  }

  async setPassword(username: string, password: string, o: CallOpts): Promise<void> {
    if (typeof password !== 'string' || password.length === 0 || password.length > MAX_PASSWORD) {
      throw new BackendError(`the new password must be 1 to ${MAX_PASSWORD} characters.`, false);
    }
    if (password.includes('\0')) throw new BackendError('the new password contains a NUL character.', false);
    this.requireSecureWrite();
    await this.session('set password', o, true, async (c) => {
      const entry = await this.requireUser(c, username);
      const changes =
        this.flavor === 'openldap'
          ? // replace with no values removes pwdReset if present (and is no error if absent)
            [replace('userPassword', [password]), replace('pwdReset', [])]
          : [replace('unicodePwd', [adPassword(password)]), replace('pwdLastSet', ['-1'])];
      await c.step(`modify of ${entry.dn}`, (cl) => cl.modify(entry.dn, changes), [password]);
    });
  }

  /**
   * Checks, changing nothing: the server is reachable and its certificate trusted; the service account binds and
   * the server sees it as itself (Who Am I?); it can read user entries, a recovery address and group
   * memberships; and it may write the password attributes. For OpenLDAP the last is a modify that the ACL engine
   * checks in full and that then must fail: it deletes a random userPassword value (and the pwdReset value the
   * entry does not hold) from a real user entry. slapd checks write access on every attribute of the modify
   * first (insufficientAccess if missing) and only then applies it; no entry holds the random value, so the
   * modify fails with noSuchAttribute and nothing changes. For AD: pwdLastSet must be in the user's
   * allowedAttributesEffective; the "Reset Password" right that governs unicodePwd cannot be checked without
   * using it.
   */
  async probe(o: CallOpts): Promise<ProbeReport> {
    const checks: ProbeReport['checks'] = [];
    const report = (): ProbeReport => ({
      backend: 'ldap',
      target: `${this.url} (${this.flavor})`,
      ok: checks.length > 0 && checks.every((c) => c.ok),
      checks,
    });
    if (o.signal.aborted) throw this.aborted('probe', o.signal);
    const c = this.connect('probe', o, false);
    /** One check; false when the connection is gone (timeout, lost), so the rest are not run. */
    const check = async (name: string, fn: () => Promise<string>): Promise<boolean> => {
      try {
        checks.push({ name, ok: true, detail: await fn() });
        return true;
      } catch (e) {
        if (o.signal.aborted) throw e instanceof BackendError ? e : this.aborted('probe', o.signal);
        checks.push({ name, ok: false, detail: (e as Error).message });
        return !(e instanceof BackendError && e.retryable);
      }
    };
    try {
      try {
        await c.bind(this.bindDn, SECRETS.get(this)!);
        checks.push({ name: 'bind', ok: true, detail: `bound as ${this.bindDn}` });
      } catch (e) {
        if (o.signal.aborted) throw e;
        // The server answered (a result code): the bind itself failed. Otherwise it was never reached.
        const answered = e instanceof BackendError && typeof e.details.ldap_code === 'number';
        checks.push({ name: answered ? 'bind' : 'connect', ok: false, detail: (e as Error).message });
        return report();
      }
      const whoami = await check('whoami', async () => {
        const r = await c.step('Who Am I? extended operation', (cl) => cl.exop(WHOAMI_OID));
        const id = (r.value ?? '').trim();
        if (!id) throw new Error('the server sees this connection as anonymous');
        return `the server sees ${id}`;
      });
      if (!whoami) return report();
      let sample: Entry | undefined;
      const users = await check('read users', async () => {
        const r = await c.step(`search under ${this.userBaseDn}`, (cl) =>
          cl.search(this.userBaseDn, {
            scope: 'sub',
            filter: this.userFilter.replaceAll('{user}', '*'),
            sizeLimit: 1,
            attributes: this.userAttributes(),
          }),
        );
        sample = r.searchEntries[0];
        if (!sample) throw new Error(`no user entry is visible under ${this.userBaseDn} with ${this.userFilter}`);
        if (!first(attrsOf(sample), this.usernameAttr)) {
          throw new Error(`${sample.dn} was read but its ${this.usernameAttr} is not readable`);
        }
        return `read ${sample.dn}`;
      });
      if (!users) return report();
      const recovery = await check('read recovery attribute', async () => {
        const f = `(&${this.userFilter.replaceAll('{user}', '*')}(${this.recoveryAttr}=*))`;
        const r = await c.step(`search under ${this.userBaseDn}`, (cl) =>
          cl.search(this.userBaseDn, { scope: 'sub', filter: f, sizeLimit: 1, attributes: [this.recoveryAttr] }),
        );
        const e = r.searchEntries[0];
        if (!e || !first(attrsOf(e), this.recoveryAttr)) {
          throw new Error(`no user under ${this.userBaseDn} has a readable ${this.recoveryAttr}`);
        }
        return `${this.recoveryAttr} readable on ${e.dn}`;
      });
      if (!recovery) return report();
      if (!(await check('read groups', () => this.probeGroups(c)))) return report();
      const target = sample;
      if (!target) {
        checks.push({ name: 'write password attributes', ok: false, detail: 'not checked: no user entry to check on' });
        return report();
      }
      await check('write password attributes', () =>
        this.flavor === 'openldap' ? this.probeWriteOpenLdap(c, target) : this.probeWriteAd(c, target),
      );
      return report();
    } finally {
      c.close();
    }
  }

  // --- internals --------------------------------------------------------------------------------------------

  private connect(what: string, o: CallOpts, write: boolean): Conn {
    const ctx = { url: this.url, secrets: [SECRETS.get(this)!] };
    return new Conn(ctx, o.signal, what, write, this.timeoutMs, this.tlsOptions);
  }

  private async session<T>(what: string, o: CallOpts, write: boolean, fn: (c: Conn) => Promise<T>): Promise<T> {
    if (o.signal.aborted) throw this.aborted(what, o.signal); // nothing was started
    const c = this.connect(what, o, write);
    try {
      await c.bind(this.bindDn, SECRETS.get(this)!);
      return await fn(c);
    } finally {
      c.close();
    }
  }

  private aborted(what: string, signal: AbortSignal): BackendError {
    return new BackendError(`LDAP ${what} was aborted: ${String(signal.reason ?? 'cancelled')}.`, false);
  }

  /** AD accepts unicodePwd only over an encrypted connection; itguard refuses before asking. */
  private requireSecureWrite(): void {
    if (this.flavor === 'active_directory' && !this.secure && !this.loopback) {
      throw new BackendError('Active Directory password writes need ldaps://.', false);
    }
  }

  private remember(key: string): void {
    this.memo.add(key);
    if (this.memo.size > MEMO_SIZE) this.memo.delete(this.memo.values().next().value!);
  }

  private userAttributes(): string[] {
    const a = [this.usernameAttr, 'cn', 'displayName', 'mail', this.recoveryAttr];
    if (this.membership !== 'search') a.push('memberOf');
    if (this.flavor === 'openldap') a.push('pwdReset', 'pwdAccountLockedTime');
    else a.push('userAccountControl', 'pwdLastSet', 'userPrincipalName');
    if (this.disabledWhen) a.push(this.disabledWhen.attribute);
    return [...new Set(a)];
  }

  private filterFor(user: string, byMail: boolean): string {
    const v = escapeFilterValue(user);
    const own = this.userFilter.replaceAll('{user}', v);
    if (!byMail) return own;
    const alts = [`(mail=${v})`];
    if (this.flavor === 'active_directory') alts.push(`(userPrincipalName=${v})`);
    return `(|${own}${alts.join('')})`;
  }

  private async findUser(c: Conn, user: string, byMail: boolean): Promise<Entry | undefined> {
    const r = await c.step(`search under ${this.userBaseDn}`, (cl) =>
      cl.search(this.userBaseDn, {
        scope: 'sub',
        filter: this.filterFor(user, byMail),
        sizeLimit: 2,
        attributes: this.userAttributes(),
      }),
    );
    const found = r.searchEntries;
    if (found.length <= 1) return found[0];
    const exact = found.filter((e) => first(attrsOf(e), this.usernameAttr)?.toLowerCase() === user.toLowerCase());
    if (exact.length === 1) return exact[0];
    throw new BackendError(`more than one directory entry matches ${user}; refusing to guess.`, false);
  }

  private async requireUser(c: Conn, username: string): Promise<Entry> {
    const e = validName(username) ? await this.findUser(c, username, false) : undefined;
    if (!e) throw new BackendError(`no user ${String(username).slice(0, MAX_NAME)} in the directory.`, false);
    return e;
  }

  private async groupsOf(c: Conn, entry: Entry): Promise<string[]> {
    const names = new Set<string>();
    const attrs = attrsOf(entry);
    if (this.membership !== 'search') {
      for (const dn of attrs.get('memberof') ?? []) {
        const n = firstRdnValue(dn);
        if (n) names.add(n);
      }
    }
    if (this.membership !== 'memberOf') {
      const dn = escapeFilterValue(entry.dn);
      let filter: string;
      if (this.flavor === 'active_directory') {
        filter = `(member:${AD_IN_CHAIN}:=${dn})`;
      } else {
        const uid = first(attrs, this.usernameAttr);
        filter = `(|(member=${dn})(uniqueMember=${dn})${uid ? `(memberUid=${escapeFilterValue(uid)})` : ''})`;
      }
      const r = await c.step(`group search under ${this.groupBaseDn}`, (cl) =>
        cl.search(this.groupBaseDn, { scope: 'sub', filter, attributes: ['cn'], paged: { pageSize: 500 } }),
      );
      for (const g of r.searchEntries) {
        const n = first(attrsOf(g), 'cn') ?? firstRdnValue(g.dn);
        if (n) names.add(n);
      }
    }
    return [...names].sort();
  }

  private toUser(entry: Entry, groups: string[]): DirectoryUser {
    const a = attrsOf(entry);
    const username = first(a, this.usernameAttr) ?? firstRdnValue(entry.dn) ?? '';
    let disabled: boolean;
    let mustChange: boolean;
    if (this.flavor === 'openldap') {
      disabled = a.has('pwdaccountlockedtime');
      mustChange = first(a, 'pwdReset')?.toUpperCase() === 'TRUE';
    } else {
      const uac = Number.parseInt(first(a, 'userAccountControl') ?? '0', 10);
      disabled = Number.isFinite(uac) && (uac & UAC_ACCOUNTDISABLE) !== 0;
      mustChange = first(a, 'pwdLastSet') === '0';
    }
    if (this.disabledWhen) {
      const vals = a.get(this.disabledWhen.attribute.toLowerCase()) ?? [];
      const want = this.disabledWhen.values?.map((v) => v.toLowerCase());
      if (vals.length && (!want || vals.some((v) => want.includes(v.toLowerCase())))) disabled = true;
    }
    return {
      username,
      displayName: first(a, 'displayName') ?? first(a, 'cn') ?? username,
      email: first(a, 'mail') ?? '',
      groups,
      recovery: recoveryOf(first(a, this.recoveryAttr)),
      disabled,
      mustChangePassword: mustChange,
    };
  }

  private async probeGroups(c: Conn): Promise<string> {
    const attrs = ['cn', 'member', 'uniqueMember', 'memberUid'];
    const r = await c.step(`group search under ${this.groupBaseDn}`, (cl) =>
      cl.search(this.groupBaseDn, {
        scope: 'sub',
        filter: '(|(member=*)(uniqueMember=*)(memberUid=*))',
        sizeLimit: 1,
        attributes: attrs,
      }),
    );
    const g = r.searchEntries[0];
    const a = g && attrsOf(g);
    if (!g || !a || !attrs.slice(1).some((k) => (a.get(k.toLowerCase()) ?? []).length)) {
      throw new Error(`no group with readable members is visible under ${this.groupBaseDn}`);
    }
    return `members of ${g.dn} readable`;
  }

  private async probeWriteOpenLdap(c: Conn, sample: Entry): Promise<string> {
    const current = first(attrsOf(sample), 'pwdReset')?.toUpperCase();
    const probeValue = `itguard-probe-${randomBytes(24).toString('hex')}`;
    const changes = [
      new Change({ operation: 'delete', modification: new Attribute({ type: 'userPassword', values: [probeValue] }) }),
      new Change({
        operation: 'delete',
        modification: new Attribute({ type: 'pwdReset', values: [current === 'TRUE' ? 'FALSE' : 'TRUE'] }),
      }),
    ];
    try {
      await c.step(`write check on ${sample.dn}`, (cl) => cl.modify(sample.dn, changes), [probeValue]);
    } catch (e) {
      const code = e instanceof BackendError ? e.details.ldap_code : undefined;
      if (code === 16) {
        return `may write userPassword and pwdReset on ${sample.dn} (checked by a modify that cannot apply; nothing changed)`;
      }
      if (code === 17)
        throw new Error('pwdReset is not in the schema: is the ppolicy overlay loaded on this database?');
      throw e;
    }
    throw new Error(`the check modify on ${sample.dn} unexpectedly succeeded`);
  }

  private async probeWriteAd(c: Conn, sample: Entry): Promise<string> {
    const r = await c.step(`read of ${sample.dn}`, (cl) =>
      cl.search(sample.dn, { scope: 'base', attributes: ['allowedAttributesEffective'] }),
    );
    const e = r.searchEntries[0];
    const allowed = new Set(
      (e ? (attrsOf(e).get('allowedattributeseffective') ?? []) : []).map((x) => x.toLowerCase()),
    );
    if (!allowed.has('pwdlastset')) throw new Error(`pwdLastSet is not writable on ${sample.dn}`);
    return `pwdLastSet writable on ${sample.dn}; unicodePwd needs the Reset Password right, which cannot be checked without using it`;
  }
}

const firstLine = (s: string) => s.split('\n')[0]!.slice(0, 300);
const replace = (type: string, values: string[] | Buffer[]) =>
  new Change({ operation: 'replace', modification: new Attribute({ type, values }) });
/** AD's unicodePwd: the password in double quotes, UTF-16LE. */
const adPassword = (pw: string): Buffer => Buffer.from(`"${pw}"`, 'utf16le');
