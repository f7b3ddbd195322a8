/**
 * The Okta factors adapter (`factors: { kind: okta }`): the `mfa` tier is confirmed by an Okta Verify push to the
 * target user's phone (`POST /api/v1/users/{id}/factors/{factorId}/verify` → WAITING with `_links.poll`, then
 * polled to SUCCESS, REJECTED or TIMEOUT). Nothing is typed anywhere: there are no codes to verify or enrol here.
 * It works beside any directory adapter: the target is found in Okta by the e-mail address the configured
 * directory holds for them (an LDAP directory with Okta push), else by the username as Okta login short name.
 */
import { obj, str } from '../cloud-http.js';
import { BackendError, type CallOpts, type ProbeReport } from '../../core/backend.js';
import { ConfigError } from '../../config.js';
import { OktaApi, type OktaConfig, type OktaUser } from '../directory/okta-api.js';
import type { FactorsPort, PushChallenge, PushFactors, PushResult, VerifyOutcome } from '../../core/ports/factors.js';

export interface OktaFactorsConfig extends OktaConfig {
  /** The address the configured directory holds for a username (to find them in Okta), if any. */
  emailOf?: (username: string, o: CallOpts) => Promise<string | undefined>;
  pollMs?: number;
  /** Okta times a push out after about five minutes. */
  ttlMs?: number;
}

const RESULTS = new Set<PushResult>(['WAITING', 'SUCCESS', 'REJECTED', 'TIMEOUT']);

export class OktaFactors implements FactorsPort, PushFactors {
  readonly kind = 'okta';
  readonly api: OktaApi;
  readonly pollMs: number;
  readonly ttlMs: number;
  constructor(private readonly cfg: OktaFactorsConfig) {
    this.api = new OktaApi(cfg);
    this.pollMs = cfg.pollMs ?? 2_000;
    this.ttlMs = cfg.ttlMs ?? 5 * 60_000;
  }

  get push(): PushFactors {
    return this;
  }

  private async oktaUser(username: string, o: CallOpts): Promise<OktaUser | undefined> {
    const email = await this.cfg.emailOf?.(username, o);
    return (email && (await this.api.user(email, o))) || (await this.api.user(username, o));
  }

  private async pushFactor(username: string, o: CallOpts) {
    const u = await this.oktaUser(username, o);
    if (!u) return undefined;
    const f = (await this.api.factors(u.id, o)).find(
      (x) => x.factorType === 'push' && x.provider === 'OKTA' && x.status === 'ACTIVE',
    );
    return f && { user: u, factor: f };
  }

  async enrolled(username: string, o: CallOpts): Promise<boolean> {
    return !!(await this.pushFactor(username, o));
  }

  async lockedUntil(): Promise<number> {
    return 0; // Okta locks factors itself; a locked push factor answers the verify with an error
  }

  async verify(): Promise<VerifyOutcome> {
    // Security: with Okta push no code is ever accepted, from a form or anywhere else.
    return { ok: false, why: 'no_factor' };
  }

  async enroll(): Promise<string> {
    throw new ConfigError(
      'backends.factors is okta: users enrol Okta Verify in Okta (their End-User Dashboard), not with itguard',
    );
  }

  async start(username: string, o: CallOpts): Promise<PushChallenge> {
    const found = await this.pushFactor(username, o);
    if (!found)
      throw new BackendError(`${username} has no active Okta Verify push factor in Okta.`, false, {
        field: 'user',
      });
    const res = await this.api.json(
      {
        method: 'POST',
        path: `/api/v1/users/${encodeURIComponent(found.user.id)}/factors/${encodeURIComponent(found.factor.id)}/verify`,
        body: {},
        what: `sending an Okta Verify push to ${username}`,
        unsafe: true,
      },
      o,
    );
    const poll = str(obj(obj(obj(res!.body)._links).poll).href);
    if (!poll) throw new BackendError('Okta answered the push without a poll link.', true);
    return { poll };
  }

  async poll(c: PushChallenge, o: CallOpts): Promise<PushResult> {
    const res = await this.api.json({ method: 'GET', path: c.poll, what: 'reading the Okta Verify push' }, o);
    const r = str(obj(res!.body).factorResult) as PushResult | undefined;
    // Fail closed: anything Okta may add later that is not SUCCESS is not a yes.
    return r && RESULTS.has(r) ? r : 'REJECTED';
  }

  async probe(o: CallOpts): Promise<ProbeReport> {
    const checks: ProbeReport['checks'] = [];
    try {
      const me = await this.api.json({ method: 'GET', path: '/api/v1/users/me', what: 'reading the token owner' }, o);
      checks.push({ name: 'reach and authenticate', ok: true });
      const id = str(obj(me!.body).id) ?? 'me';
      await this.api.json({ method: 'GET', path: `/api/v1/users/${id}/factors`, what: 'listing factors' }, o);
      checks.push({ name: 'read factors', ok: true });
    } catch (e) {
      checks.push({ name: 'okta factors', ok: false, detail: e instanceof Error ? e.message : String(e) });
    }
    return { backend: 'factors:okta', target: this.api.orgUrl.origin, ok: checks.every((c) => c.ok), checks };
  }
}
