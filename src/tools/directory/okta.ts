/**
 * The Okta directory adapter (`directory: { kind: okta, org_url, token_env }`): users by login short name, login
 * or e-mail; their groups (for denied target groups, checked in the tool); their status. A reset never yields a
 * credential: `POST /api/v1/users/{id}/lifecycle/reset_password?sendEmail=true` makes Okta mail the user a
 * one-time link (the user moves to RECOVERY), so itguard never holds a link or a password.
 */
import { obj, str } from '../cloud-http.js';
import { BackendError, type CallOpts, type ProbeReport, type WriteOpts } from '../../core/backend.js';
import type { DirectoryPort, DirectoryUser } from '../../core/ports/directory.js';
import { OktaApi, type OktaConfig, type OktaUser } from './okta-api.js';

/** Statuses in which an account cannot sign in at all: refused like a disabled LDAP account. */
const DISABLED = new Set(['SUSPENDED', 'DEPROVISIONED', 'STAGED', 'PROVISIONED']);

export class OktaDirectory implements DirectoryPort {
  readonly kind = 'okta';
  /** Okta mails the reset link itself (the reset flow does not use the outbox). */
  readonly mailsResetLink = true;
  readonly api: OktaApi;
  constructor(cfg: OktaConfig) {
    this.api = new OktaApi(cfg);
  }

  async get(user: string, o: CallOpts): Promise<DirectoryUser | undefined> {
    const u = await this.api.user(user, o);
    if (!u) return undefined;
    const username = usernameOf(u);
    // Security: a short-name lookup must name this very account, not one Okta matched loosely.
    if (username !== user.toLowerCase() && u.profile.email.toLowerCase() !== user.toLowerCase()) return undefined;
    const groups = await this.api.list(
      `/api/v1/users/${encodeURIComponent(u.id)}/groups?limit=200`,
      `listing the groups of ${username}`,
      o,
    );
    const p = u.profile;
    return {
      username,
      displayName: p.displayName ?? ([p.firstName, p.lastName].filter(Boolean).join(' ') || username),
      email: p.email,
      groups: groups.map((g) => str(obj(obj(g).profile).name)).filter((n): n is string => !!n),
      recovery: p.email ? { kind: 'email', address: p.email } : undefined,
      disabled: DISABLED.has(u.status),
      mustChangePassword: u.status === 'RECOVERY' || u.status === 'PASSWORD_EXPIRED',
    };
  }

  /**
   * Okta resets the password and e-mails the one-time link to the user's primary address. Returns that address.
   * itguard asks for sendEmail=true only, and drops any link an answer might carry.
   */
  async resetByEmail(username: string, o: WriteOpts): Promise<{ address: string }> {
    const u = await this.api.user(username, o);
    if (!u || usernameOf(u) !== username.toLowerCase())
      throw new BackendError(`user: no user "${username}" in Okta`, false, { field: 'user' });
    await this.api.json(
      {
        method: 'POST',
        path: `/api/v1/users/${encodeURIComponent(u.id)}/lifecycle/reset_password`,
        query: { sendEmail: 'true' },
        what: `resetting the password of ${username}`,
        unsafe: true,
      },
      o,
    );
    return { address: u.profile.email };
  }

  async lockForReset(): Promise<void> {
    throw new BackendError('Okta resets through its own e-mailed link; itguard sets no password there.', false);
  }

  async setPassword(): Promise<void> {
    throw new BackendError('Okta users set their new password on Okta’s own reset page, not here.', false);
  }

  async probe(o: CallOpts): Promise<ProbeReport> {
    const checks: ProbeReport['checks'] = [];
    const target = this.api.orgUrl.origin;
    try {
      const me = await this.api.json({ method: 'GET', path: '/api/v1/users/me', what: 'reading the token owner' }, o);
      const login = str(obj(obj(me!.body).profile).login) ?? '?';
      checks.push({ name: 'reach and authenticate', ok: true, detail: `API token of ${login}` });
      await this.api.json({ method: 'GET', path: '/api/v1/users', query: { limit: 1 }, what: 'listing users' }, o);
      checks.push({ name: 'read users', ok: true });
      await this.api.json({ method: 'GET', path: '/api/v1/groups', query: { limit: 1 }, what: 'listing groups' }, o);
      checks.push({ name: 'read groups', ok: true });
      const id = str(obj(me!.body).id) ?? 'me';
      const roles = await this.api
        .json({ method: 'GET', path: `/api/v1/users/${id}/roles`, what: 'reading the admin roles' }, o)
        .catch(() => undefined);
      const types = Array.isArray(roles?.body) ? (roles.body as unknown[]).map((r) => str(obj(r).type) ?? '?') : [];
      checks.push({
        name: 'admin role (reset passwords, verify factors)',
        ok: true,
        detail: types.length ? types.join(', ') : 'not readable with this token (checked on first use)',
      });
    } catch (e) {
      checks.push({ name: 'okta', ok: false, detail: e instanceof Error ? e.message : String(e) });
    }
    return { backend: 'directory:okta', target, ok: checks.every((c) => c.ok), checks };
  }
}

/** The itguard username of an Okta user: the local part of the login (jdoe for jdoe@example.com), lower case. */
export const usernameOf = (u: OktaUser): string => u.profile.login.split('@')[0]!.toLowerCase();
