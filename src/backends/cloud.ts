/**
 * Builds the cloud adapters a policy names: `directory: { kind: okta }`, `factors: { kind: okta }`,
 * `deploy: { kind: intune }`, `kb: { kind: confluence }`; undefined where the policy keeps the embedded one.
 * Secrets come from the environment variables the policy names; a missing one is a ConfigError naming the key.
 * The factors and deploy adapters find people through whichever directory is configured (its e-mail address is
 * the Okta login or Entra UPN), so an LDAP directory with Okta push, or with Intune, works.
 */
import type { Logger } from 'pino';
import { ConfigError } from '../config.js';
import type { Policy } from '../policy/schema.js';
import type { DirectoryPort } from '../core/ports/directory.js';
import { OktaDirectory } from '../tools/directory/okta.js';
import { OktaFactors } from '../tools/factors/okta.js';
import { ConfluenceKb } from '../tools/kb/confluence.js';
import type { DeployPort } from '../core/ports/deploy.js';
import type { DeployJobsPort } from '../core/ports/deploy-jobs.js';
import { IntuneDeploy } from '../tools/software/intune.js';
import type { CallOpts } from '../core/backend.js';

/** Test and operations knobs that are not policy (poll intervals). */
export interface CloudTuning {
  pushPollMs?: number;
  deployPollMs?: number;
  retryBaseMs?: number;
}

interface Opts {
  policy: Policy;
  env?: NodeJS.ProcessEnv | undefined;
  log?: Logger | undefined;
  now?: () => number;
  cloud?: CloudTuning | undefined;
}

function secret(o: Opts, name: string, key: string): string {
  const v = (o.env ?? process.env)[name];
  if (!v) throw new ConfigError(`${key}: environment variable ${name} is not set`);
  return v;
}

const retry = (o: Opts) => (o.cloud?.retryBaseMs !== undefined ? { retryBaseMs: o.cloud.retryBaseMs } : {});
const timeout = (ms: number | undefined) => (ms ? { timeoutMs: ms } : {});

export function cloudDirectory(o: Opts): OktaDirectory {
  const d = o.policy.backends.directory;
  if (d.kind !== 'okta') throw new Error('not an okta directory');
  return new OktaDirectory({
    orgUrl: d.orgUrl,
    apiToken: secret(o, d.tokenEnv, 'backends.directory.token_env'),
    ...timeout(d.timeoutMs),
    ...retry(o),
  });
}

const emailVia =
  (dir: (() => DirectoryPort) | undefined) =>
  async (username: string, c: CallOpts): Promise<string | undefined> =>
    dir ? (await dir().get(username, c))?.email || undefined : undefined;

export function cloudFactors(o: Opts, dir: (() => DirectoryPort) | undefined): OktaFactors | undefined {
  const f = o.policy.backends.factors;
  if (f.kind !== 'okta') return undefined;
  const tokenKey =
    o.policy.backends.directory.kind === 'okta' ? 'backends.directory.token_env' : 'backends.factors.token_env';
  return new OktaFactors({
    orgUrl: f.orgUrl,
    apiToken: secret(o, f.tokenEnv, tokenKey),
    emailOf: emailVia(dir),
    ...timeout(f.timeoutMs),
    ...retry(o),
    ...(o.cloud?.pushPollMs !== undefined ? { pollMs: o.cloud.pushPollMs } : {}),
  });
}

export function cloudDeploy(
  o: Opts,
  w: {
    catalog?: Pick<DeployPort, 'catalog' | 'getPackage'>;
    /** The store's deploy_jobs records (absent without a store: `policy check --probe`). */
    jobs?: DeployJobsPort;
    directory?: (() => DirectoryPort) | undefined;
  },
): IntuneDeploy | undefined {
  const d = o.policy.backends.deploy;
  if (d.kind !== 'intune') return undefined;
  return new IntuneDeploy({
    tenantId: d.tenantId,
    clientId: d.clientId,
    clientSecret: secret(o, d.clientSecretEnv, 'backends.deploy.client_secret_env'),
    graphUrl: d.graphUrl,
    loginUrl: d.loginUrl,
    apps: d.apps,
    assign: d.assign,
    installTimeoutMs: d.installTimeoutMs,
    ...timeout(d.timeoutMs),
    ...retry(o),
    ...(o.now ? { now: o.now } : {}),
    ...(o.cloud?.deployPollMs !== undefined ? { pollMs: o.cloud.deployPollMs } : {}),
    ...(w.catalog ? { catalog: w.catalog } : {}),
    ...(w.jobs ? { jobs: w.jobs } : {}),
    upnOf: emailVia(w.directory),
  });
}

export function cloudKb(o: Opts): ConfluenceKb | undefined {
  const k = o.policy.backends.kb;
  if (k.kind !== 'confluence') return undefined;
  return new ConfluenceKb({
    baseUrl: k.baseUrl,
    email: secret(o, k.emailEnv, 'backends.kb.email_env'),
    apiToken: secret(o, k.tokenEnv, 'backends.kb.token_env'),
    spaces: k.spaces,
    ...timeout(k.timeoutMs),
    ...retry(o),
  });
}
