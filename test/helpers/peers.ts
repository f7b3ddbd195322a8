/**
 * The real peers of a deployment with real backends, all on loopback, for the end-to-end tests that run the built
 * CLI against them: an OpenLDAP slapd (test/helpers/slapd.ts: ppolicy, memberof, the service account), the Jira
 * Cloud stand-in (test/helpers/jira-standin.ts) and an SMTP server (smtp-server) that keeps every message it
 * accepts. A policy file in a temporary directory points `backends:` at them; the secrets it names by variable
 * are in `env`, to pass to every `itguard` process, exactly as a deployment would set them.
 */
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SMTPServer } from 'smtp-server';
import { CLI } from './cli.js';
import { ALL_PERMISSIONS, JiraStandin } from './jira-standin.js';
import { startSlapd, type Slapd } from './slapd.js';

/** One message the SMTP server accepted. */
export interface Mail {
  from: string;
  to: string[];
  raw: string;
  headers: Record<string, string>;
  /** The body with quoted-printable soft breaks and escapes decoded, LF line ends. */
  text: string;
}

export interface SmtpCapture {
  url: string;
  port: number;
  received: Mail[];
  close(): Promise<void>;
}

export interface Peers {
  dir: string;
  policyFile: string;
  /** A fresh database path in `dir` (nothing creates it). */
  db: string;
  /** The variables the policy names: Jira e-mail and token, the LDAP bind password, the SMTP URL. */
  env: Record<string, string>;
  slapd: Slapd;
  jira: JiraStandin;
  smtp: SmtpCapture;
  /** An issue in the stand-in in a project the Jira account may browse, but outside `allowed_projects`. */
  outside: { key: string; summary: string };
  /** The sender the policy gives the outbox. */
  from: string;
  stop(): Promise<void>;
}

const JIRA_EMAIL = 'itguard@example.com';
const FROM = 'it-helpdesk@example.com';

/** Headers of a raw message, unfolded, keyed in lower case; and its body (quoted-printable decoded). */
export function parseMail(raw: string): { headers: Record<string, string>; text: string } {
  const [head = '', ...rest] = raw.split(/\r?\n\r?\n/);
  const headers: Record<string, string> = {};
  for (const line of head.replace(/\r?\n[ \t]+/g, ' ').split(/\r?\n/)) {
    const i = line.indexOf(':');
    if (i > 0) headers[line.slice(0, i).toLowerCase()] = line.slice(i + 1).trim();
  }
  let body = rest.join('\n\n');
  if (/quoted-printable/i.test(headers['content-transfer-encoding'] ?? '')) {
    body = body
      .replace(/=\r?\n/g, '')
      .replace(/=([0-9A-F]{2})/g, (_, h: string) => String.fromCharCode(parseInt(h, 16)));
  }
  return { headers, text: body.replace(/\r\n/g, '\n') };
}

/** A plain-SMTP server on 127.0.0.1 (no STARTTLS, no AUTH: the policy sets `require_tls: false`). */
export async function startSmtp(): Promise<SmtpCapture> {
  const received: Mail[] = [];
  const server = new SMTPServer({
    logger: false,
    authOptional: true,
    disabledCommands: ['STARTTLS', 'AUTH'],
    onData(stream, session, callback) {
      let raw = '';
      stream.setEncoding('utf8');
      stream.on('data', (c: string) => (raw += c));
      stream.on('end', () => {
        received.push({
          from: session.envelope.mailFrom ? session.envelope.mailFrom.address : '',
          to: session.envelope.rcptTo.map((r) => r.address),
          raw,
          ...parseMail(raw),
        });
        callback(null, 'Queued');
      });
    },
  });
  server.on('error', () => undefined);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  const port = (server.server.address() as AddressInfo).port;
  return {
    url: `smtp://127.0.0.1:${port}`,
    port,
    received,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

/**
 * Runs the built CLI without blocking this process: the Jira stand-in and the SMTP server live in the test's own
 * event loop, so a CLI verb that talks to them (`policy check --probe`) would time out under runCli's spawnSync.
 */
export function runCliAsync(
  args: string[],
  env: Record<string, string> = {},
  timeoutMs = 30_000,
): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const p = spawn(process.execPath, [CLI, ...args], {
      env: { ...process.env, ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    p.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    p.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const timer = setTimeout(() => p.kill('SIGKILL'), timeoutMs);
    p.once('error', (e) => (clearTimeout(timer), reject(e)));
    p.once('close', (code) => (clearTimeout(timer), resolve({ code, stdout, stderr })));
  });
}

/** YAML flow scalars: JSON strings are valid YAML, and DNs carry commas. */
const q = (s: string): string => JSON.stringify(s);

function policyYaml(o: { jiraUrl: string; slapd: Slapd }): string {
  const s = o.slapd;
  return `# itguard e2e policy: real backends on loopback (test/helpers/peers.ts)
version: 1
timezone: UTC
durability: strict
stdio_principal: helpdesk-agent
principals:
  helpdesk-agent: { scopes: [kb:read, tickets:read, tickets:write, password:reset, software:read, software:install] }
  kb-reader:      { scopes: [kb:read, tickets:read] }
  it-approver:    { scopes: [approvals:decide, audit:read] }
session: { max_calls: 40, max_minutes: 30, max_result_bytes: 2000000, max_identical_calls: 3, max_consecutive_failures: 5 }
mfa: { allow_form_code: true, out_of_band: true }
approvals: { wait_seconds: 30, expire_hours: 24 }
tools:
  ticket_create:
    tier: auto
    dedupe_window: 15m
    caps:
      - { name: tickets-per-day, window: day, limit: 5000, alarm_at: 3000 }
      - { name: tickets-per-requester, window: hour, per: requester, limit: 5 }
  password_reset:
    tier: mfa
    deny_target_groups: [admins, service-accounts]
    caps:
      - { name: resets-per-day, window: day, limit: 200, alarm_at: 50 }
      - { name: resets-per-user, window: day, per: target, limit: 2 }
  software_install:
    tier: approval
    self_service_tier: confirm
backends:
  tickets:
    kind: jira
    base_url: ${q(o.jiraUrl)}
    email_env: JIRA_EMAIL
    token_env: JIRA_API_TOKEN
    project: IT
    allowed_projects: [IT]
    issue_type: Task
  directory:
    kind: ldap
    url: ${q(s.url)}
    bind_dn: ${q(s.svcDn)}
    password_env: LDAP_BIND_PASSWORD
    base_dn: ${q(s.suffix)}
    user_base_dn: ${q(s.peopleDn)}
    group_base_dn: ${q(s.groupsDn)}
    flavor: openldap
  deploy: { kind: embedded }
  outbox: { kind: smtp, url_env: SMTP_URL, from: ${q(FROM)}, require_tls: false }
demo: false
`;
}

/**
 * Starts slapd (openldap variant), the Jira stand-in (projects IT and HR, both fully permitted to the API account;
 * the policy allows only IT; one HR issue already there; a Jira account for the LDAP user mlopez) and the SMTP
 * capture, and writes the policy. `stop()` stops them all and removes the directory.
 */
export async function startPeers(): Promise<Peers> {
  const dir = mkdtempSync(join(tmpdir(), 'itguard-peers-'));
  const token = `ATATT-${randomBytes(18).toString('base64url')}`;
  const started: (() => Promise<void>)[] = [];
  const stop = async () => {
    for (const close of started.splice(0).reverse()) await close().catch(() => undefined);
    rmSync(dir, { recursive: true, force: true });
  };
  try {
    const slapd = await startSlapd('openldap');
    started.push(() => slapd.close());
    const jira = await JiraStandin.start({
      email: JIRA_EMAIL,
      apiToken: token,
      projects: { IT: ALL_PERMISSIONS, HR: ALL_PERMISSIONS },
      users: [{ accountId: 'acc-mlopez', email: 'mlopez@example.com', displayName: 'Maria Lopez' }],
    });
    started.push(() => jira.close());
    const smtp = await startSmtp();
    started.push(() => smtp.close());

    // An issue the Jira account can read, in a project the policy does not allow: itguard must never show it.
    const outside = { summary: 'Confidential: salary bands for the finance team' };
    const res = await fetch(`${jira.url}/rest/api/3/issue`, {
      method: 'POST',
      headers: {
        authorization: `Basic ${Buffer.from(`${JIRA_EMAIL}:${token}`).toString('base64')}`,
        'content-type': 'application/json',
      },
      body: JSON.stringify({
        fields: { project: { key: 'HR' }, summary: outside.summary, issuetype: { name: 'Task' } },
      }),
    });
    if (res.status !== 201) throw new Error(`seeding the HR issue failed: ${res.status} ${await res.text()}`);
    const { key } = (await res.json()) as { key: string };

    const policyFile = join(dir, 'itguard.yaml');
    writeFileSync(policyFile, policyYaml({ jiraUrl: jira.url, slapd }));
    return {
      dir,
      policyFile,
      db: join(dir, 'itguard.db'),
      env: {
        JIRA_EMAIL,
        JIRA_API_TOKEN: token,
        LDAP_BIND_PASSWORD: slapd.svcPassword,
        SMTP_URL: smtp.url,
      },
      slapd,
      jira,
      smtp,
      outside: { key, summary: outside.summary },
      from: FROM,
      stop,
    };
  } catch (e) {
    await stop();
    throw e;
  }
}
