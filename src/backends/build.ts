/**
 * Builds the backends a policy names (`backends.<name>.kind`): the embedded adapters over the itguard store (SQLite
 * or PostgreSQL, ./embedded.ts),
 * or Jira Cloud, LDAP / Active Directory and SMTP with their secrets read from the environment variables the
 * policy names (never from the policy itself). A port is built on first use, so admin verbs that never touch a
 * backend (audit verify) need no backend credentials; `serve` builds every one at start and stops on a mistake,
 * naming the policy key (exit 2).
 */
import { readFileSync } from 'node:fs';
import type { Logger } from 'pino';
import { ConfigError } from '../config.js';
import type { Policy } from '../policy/schema.js';
import type { Backends } from '../core/backends.js';
import type { DirectoryPort } from '../core/ports/directory.js';
import { LdapDirectory } from '../tools/directory/ldap.js';
import type { OutboxPort } from '../core/ports/outbox.js';
import { SmtpOutbox } from '../tools/outbox/smtp.js';
import { ResetFlow } from '../tools/password/reset-flow.js';
import { cloudDeploy, cloudDirectory, cloudFactors, cloudKb, type CloudTuning } from './cloud.js';
import type { TicketsPort } from '../core/ports/tickets.js';
import { JiraTickets } from '../tools/tickets/jira.js';
import type { Embedded } from './embedded.js';

export type { Embedded } from './embedded.js';

export interface BuildOptions {
  /**
   * The embedded adapters and records (factors, reset links, deliveries, jobs) on the store's tables:
   * backends/embedded.ts `embeddedSqlite`, or backends/embedded-postgres.ts `embeddedPostgres`.
   */
  embedded: Embedded;
  policy: Policy;
  now: () => number;
  env?: NodeJS.ProcessEnv;
  log?: Logger;
  /** Poll intervals and retry pacing of the cloud adapters (tests shorten them). */
  cloud?: CloudTuning;
}

function secret(env: NodeJS.ProcessEnv, name: string, key: string): string {
  const v = env[name];
  if (!v) throw new ConfigError(`${key}: environment variable ${name} is not set`);
  return v;
}

const readCa = (file: string, key: string): string => {
  try {
    return readFileSync(file, 'utf8');
  } catch (e) {
    throw new ConfigError(`${key}: cannot read ${file} (${(e as NodeJS.ErrnoException).code ?? 'error'})`);
  }
};

/** An adapter constructor's complaint as a configuration error naming the policy key. */
function configured<T>(key: string, make: () => T): T {
  try {
    return make();
  } catch (e) {
    if (e instanceof ConfigError) throw e;
    const msg = (e as Error).message;
    // An adapter that names its own key (backends.tickets.base_url: ...) is precise already.
    if (msg.startsWith(`${key}.`)) throw new ConfigError(msg);
    throw new ConfigError(`${key}: ${msg.replace(/^(backends\.[a-z_.]+|outbox smtp|ldap):\s*/i, '')}`);
  }
}

type AdapterOptions = Pick<BuildOptions, 'policy' | 'env' | 'log' | 'cloud'> & { now?: () => number };

function tickets(o: AdapterOptions, embedded: Embedded | undefined): TicketsPort | undefined {
  const t = o.policy.backends.tickets;
  if (t.kind === 'embedded') return embedded?.tickets;
  const env = o.env ?? process.env;
  return configured('backends.tickets', () => {
    const email = t.email ?? secret(env, t.emailEnv!, 'backends.tickets.email_env');
    return new JiraTickets({
      baseUrl: t.baseUrl,
      email,
      apiToken: secret(env, t.tokenEnv, 'backends.tickets.token_env'),
      issueType: t.issueType,
      ...(t.timeoutMs ? { timeoutMs: t.timeoutMs } : {}),
    });
  });
}

function directory(o: AdapterOptions, embedded: Embedded | undefined): DirectoryPort | undefined {
  const d = o.policy.backends.directory;
  if (d.kind === 'embedded') return embedded?.directory;
  if (d.kind === 'okta') return cloudDirectory(o);
  const env = o.env ?? process.env;
  return configured('backends.directory', () => {
    const cfg = {
      url: d.url,
      bindDn: d.bindDn,
      bindPassword: secret(env, d.passwordEnv, 'backends.directory.password_env'),
      baseDn: d.baseDn,
      flavor: d.flavor,
      recoveryAttribute: d.recoveryAttribute,
      ...(d.userBaseDn ? { userBaseDn: d.userBaseDn } : {}),
      ...(d.groupBaseDn ? { groupBaseDn: d.groupBaseDn } : {}),
      ...(d.userFilter ? { userFilter: d.userFilter } : {}),
      ...(d.usernameAttribute ? { usernameAttribute: d.usernameAttribute } : {}),
      ...(d.membership ? { membership: d.membership } : {}),
      ...(d.caFile ? { caFile: d.caFile } : {}),
      ...(d.timeoutMs ? { timeoutMs: d.timeoutMs } : {}),
    };
    return new LdapDirectory(cfg);
  });
}

function outbox(o: AdapterOptions, embedded: Embedded | undefined): OutboxPort | undefined {
  const m = o.policy.backends.outbox;
  if (m.kind === 'embedded') return embedded?.outbox;
  const env = o.env ?? process.env;
  return configured('backends.outbox', () => {
    const cfg = {
      url: secret(env, m.urlEnv, 'backends.outbox.url_env'),
      from: m.from,
      requireTls: m.requireTls,
      ...(m.caFile ? { ca: readCa(m.caFile, 'backends.outbox.ca_file') } : {}),
      ...(m.timeoutMs ? { timeoutMs: m.timeoutMs } : {}),
      ...(o.log ? { log: o.log.child({ component: 'outbox' }) } : {}),
    };
    return new SmtpOutbox(cfg);
  });
}

/** The ports, each built on first use (see the file comment), and the embedded adapters. */
export function buildBackends(o: BuildOptions): { backends: Backends; embedded: Embedded } {
  const { embedded } = o;
  const t = o.policy.backends.tickets;
  let ticketsPort: TicketsPort | undefined;
  let directoryPort: DirectoryPort | undefined;
  let outboxPort: OutboxPort | undefined;
  let resets: ResetFlow | undefined;
  let kbPort: Backends['kb'] | undefined;
  let deployPort: Backends['deploy'] | undefined;
  let factorsPort: Backends['factors'] | undefined;
  const backends: Backends = {
    // The cloud adapters (Okta, Intune, Confluence) are built in ./cloud.ts; the embedded ones are the default.
    get kb() {
      return (kbPort ??= cloudKb(o) ?? embedded.kb);
    },
    get deploy() {
      return (deployPort ??=
        cloudDeploy(o, { catalog: embedded.deploy, jobs: embedded.deployJobs, directory: () => backends.directory }) ??
        embedded.deploy);
    },
    get factors() {
      return (factorsPort ??= cloudFactors(o, () => backends.directory) ?? embedded.factors);
    },
    projects: { home: t.project, allowed: t.allowedProjects },
    get tickets() {
      return (ticketsPort ??= tickets(o, embedded)!);
    },
    get directory() {
      return (directoryPort ??= directory(o, embedded)!);
    },
    get outbox() {
      return (outboxPort ??= outbox(o, embedded)!);
    },
    get resets() {
      return (resets ??= new ResetFlow({
        directory: backends.directory,
        outbox: backends.outbox,
        resets: embedded.resets,
        deliveries: embedded.deliveries,
      }));
    },
  };
  return { backends, embedded };
}

/** Builds every port now: `serve` stops at start on a backend configuration mistake rather than at the first call. */
export function buildAll(b: Backends): void {
  void [b.kb, b.tickets, b.directory, b.deploy, b.outbox, b.factors, b.resets];
}

/**
 * The adapters of the policy's non-embedded backends, without a database (`policy check --probe`); an embedded
 * backend is absent. A missing secret or a bad setting throws ConfigError naming the policy key.
 */
export function externalAdapters(o: AdapterOptions): {
  tickets?: TicketsPort | undefined;
  directory?: DirectoryPort | undefined;
  outbox?: OutboxPort | undefined;
  deploy?: { probe: DirectoryPort['probe'] } | undefined;
  kb?: { probe: DirectoryPort['probe'] } | undefined;
  factors?: { probe: DirectoryPort['probe'] } | undefined;
} {
  const dir = directory(o, undefined);
  return {
    tickets: tickets(o, undefined),
    directory: dir,
    outbox: outbox(o, undefined),
    deploy: cloudDeploy(o, { directory: dir && (() => dir) }),
    kb: cloudKb(o),
    factors: cloudFactors(o, dir && (() => dir)),
  };
}
