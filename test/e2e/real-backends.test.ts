/**
 * Issue 9's "Done when", as an operator and a user would run it: the built CLI with a policy whose `backends:`
 * are a real OpenLDAP slapd, the Jira Cloud stand-in and an SMTP server (test/helpers/peers.ts), and a real MCP
 * client over stdio that answers form elicitation the way a person typing their authenticator code would.
 *
 * What is checked is what each peer holds afterwards (the stand-in's issues, labels, properties and comments;
 * slapd binds and pwdReset; the mails the SMTP server accepted), what the CLI prints, and that no reset link,
 * new password or TOTP code appears in a tool result, the server's log or the audit.
 */
import { randomBytes } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StdioClientTransport } from '@modelcontextprotocol/sdk/client/stdio.js';
import {
  ElicitRequestSchema,
  type CallToolResult,
  type ElicitRequest,
  type ElicitResult,
} from '@modelcontextprotocol/sdk/types.js';
import * as OTPAuth from 'otpauth';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CLI, runCli } from '../helpers/cli.js';
import { codeOf, textOf } from '../helpers/harness.js';
import { runCliAsync, startPeers, type Peers } from '../helpers/peers.js';

const KB_DIR = fileURLToPath(new URL('../../kb', import.meta.url));
const USER = 'mlopez'; // in slapd only: the Jira stand-in knows her e-mail, itguard's own tables know nothing of her
const ADMIN = 'aadmin'; // member of cn=admins in slapd
const reason = 'the user asked in chat';

interface ProbeDoc {
  ok: boolean;
  backends: {
    backend: string;
    target: string;
    ok: boolean;
    checks: { name: string; ok: boolean; detail?: string }[];
  }[];
}
/** The policy's backends and the adapter kind each one names. */
const BACKENDS = [
  ['tickets', 'jira'],
  ['directory', 'ldap'],
  ['outbox', 'smtp'],
] as const;

/** Plain text of an ADF document (the stand-in keeps Jira's own shape). */
const adfText = (n: unknown): string => {
  const x = n as { text?: unknown; content?: unknown } | null;
  if (typeof x !== 'object' || x === null) return '';
  const kids = Array.isArray(x.content) ? x.content.map(adfText) : [];
  return [typeof x.text === 'string' ? x.text : '', ...kids].join(' ');
};

/** A 6-digit code as a whole token: not a run of digits inside a timestamp, a counter or a hash. */
const codeToken = (code: string) => new RegExp(`(?<![0-9A-Za-z])${code}(?![0-9A-Za-z])`);

describe('itguard against real backends: Jira stand-in, OpenLDAP slapd, SMTP (stdio, the built CLI)', () => {
  let peers: Peers;
  let env: Record<string, string>;
  let cli: (args: string[], extraEnv?: Record<string, string>) => ReturnType<typeof runCli>;
  /** For verbs that talk to the in-process peers (the stand-in, the SMTP server): spawnSync would block them. */
  let cliAsync: (args: string[], extraEnv?: Record<string, string>) => ReturnType<typeof runCliAsync>;
  let client: Client;
  let stderr = '';
  const asked: ElicitRequest['params'][] = [];
  /** How the person at the client answers the next form; the default declines. */
  let answer: (req: ElicitRequest['params']) => ElicitResult = () => ({ action: 'decline' });
  const uris: Record<string, string> = {};
  /** Every TOTP code typed into a form. */
  const typed: string[] = [];
  /** Filled by the reset test: what must never be shown anywhere but the mail and the page. */
  const secret = { link: '', token: '', password: '' };
  let resetResult: CallToolResult | undefined;

  const call = async (name: string, args: Record<string, unknown>) =>
    (await client.callTool({ name, arguments: args })) as CallToolResult;

  beforeAll(async () => {
    peers = await startPeers();
    // ITGUARD_PUBLIC_URL empty: links point at the stdio process's own loopback page server.
    env = { ...peers.env, ITGUARD_PUBLIC_URL: '' };
    cli = (args, extraEnv = {}) =>
      runCli([...args, '--policy', peers.policyFile, '--db', peers.db], { ...env, ...extraEnv });
    cliAsync = (args, extraEnv = {}) =>
      runCliAsync([...args, '--policy', peers.policyFile, '--db', peers.db], { ...env, ...extraEnv });
    const kb = cli(['kb', 'import', KB_DIR]);
    expect(kb.code, kb.stderr).toBe(0);

    const inherited = Object.fromEntries(
      Object.entries(process.env).filter((e): e is [string, string] => e[1] !== undefined),
    );
    const transport = new StdioClientTransport({
      command: process.execPath,
      args: [CLI, 'serve', '--stdio', '--policy', peers.policyFile, '--db', peers.db],
      env: { ...inherited, ...env, ITGUARD_LOG_LEVEL: 'debug' },
      stderr: 'pipe',
    });
    transport.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
    client = new Client(
      { name: 'e2e-real-backends', version: '1.0.0' },
      { capabilities: { elicitation: { form: {} } } },
    );
    client.setRequestHandler(ElicitRequestSchema, async (req) => {
      asked.push(req.params);
      return answer(req.params);
    });
    await client.connect(transport);
  }, 30_000);

  afterAll(async () => {
    await client?.close().catch(() => undefined);
    await peers?.stop();
  });

  it('policy check --probe: every backend reachable and permitted (exit 0); a wrong bind password fails the directory (exit 1)', async () => {
    const knownSecrets = [peers.env.JIRA_API_TOKEN!, peers.env.LDAP_BIND_PASSWORD!];
    const good = await cliAsync(['policy', 'check', peers.policyFile, '--probe']);
    const goodText = `${good.stdout}\n${good.stderr}`;
    expect(good.code, goodText).toBe(0);
    const lines = goodText.split('\n');
    for (const [name, kind] of BACKENDS) {
      const line = lines.find((l) => l.includes(name));
      expect(line, `no line names ${name}:\n${goodText}`).toBeDefined();
      expect(line).toContain(kind);
      expect(line).toMatch(/\bok\b/i);
    }

    const json = await cliAsync(['policy', 'check', peers.policyFile, '--probe', '--json']);
    expect(json.code, json.stderr).toBe(0);
    const doc = JSON.parse(json.stdout) as ProbeDoc;
    expect(doc.ok).toBe(true);
    for (const [name, kind] of BACKENDS) {
      const b = doc.backends.find((x) => x.backend.includes(name) || x.backend.includes(kind));
      expect(b, `no probe report for ${name} in ${json.stdout}`).toBeDefined();
      expect(b!.ok).toBe(true);
      expect(b!.checks.length).toBeGreaterThan(0);
      expect(b!.checks.every((c) => c.ok)).toBe(true);
    }

    const wrong = 'Wr0ng-bind-password-for-the-probe';
    const bad = await cliAsync(['policy', 'check', peers.policyFile, '--probe'], { LDAP_BIND_PASSWORD: wrong });
    const badText = `${bad.stdout}\n${bad.stderr}`;
    expect(bad.code, badText).toBe(1);
    const dirLine = badText.split('\n').find((l) => l.includes('directory'));
    expect(dirLine, badText).toMatch(/fail|not ok|error|invalid/i);
    for (const name of ['tickets', 'outbox'])
      expect(badText.split('\n').find((l) => l.includes(name))).toMatch(/\bok\b/i);

    const badJson = await cliAsync(['policy', 'check', peers.policyFile, '--probe', '--json'], {
      LDAP_BIND_PASSWORD: wrong,
    });
    expect(badJson.code).toBe(1);
    const badDoc = JSON.parse(badJson.stdout) as ProbeDoc;
    expect(badDoc.ok).toBe(false);
    const dir = badDoc.backends.find((x) => x.backend.includes('directory') || x.backend.includes('ldap'))!;
    expect(dir.ok).toBe(false);
    expect(dir.checks.find((c) => !c.ok)?.detail).toMatch(/invalid credentials/i);
    expect(badDoc.backends.filter((x) => !x.ok)).toHaveLength(1);

    // A probe changes nothing and prints no secret.
    for (const out of [goodText, json.stdout, badText, badJson.stdout]) {
      for (const s of [...knownSecrets, wrong]) expect(out).not.toContain(s);
    }
    expect(peers.jira.issues).toHaveLength(1); // the seeded HR issue only
    expect(peers.smtp.received).toHaveLength(0);
    // The directory's write check runs a modify on a real user that cannot apply: that user still signs in.
    expect(await peers.slapd.canBind(peers.slapd.dn('jdoe'), peers.slapd.passwords.jdoe!)).toBe(true);
  });

  it('directory enroll looks the user up in LDAP and prints the otpauth:// URI alone', () => {
    for (const user of [USER, ADMIN]) {
      const r = cli(['directory', 'enroll', user]);
      expect(r.code, r.stderr).toBe(0);
      expect(r.stdout).toMatch(new RegExp(`^otpauth://totp/itguard:${user}\\?[^\\n]*secret=[A-Z2-7]+[^\\n]*\\n$`));
      uris[user] = r.stdout.trim();
    }
    const nobody = cli(['directory', 'enroll', 'nobody']);
    expect(nobody.code).toBe(1);
    expect(nobody.stderr).toMatch(/no user nobody/);
    expect(nobody.stdout).toBe('');
  });

  it('kb_search answers from the imported knowledge base', async () => {
    const r = await call('kb_search', { query: 'vpn keeps disconnecting' });
    expect(r.isError, textOf(r)).toBeFalsy();
    expect((r.structuredContent as { results: { title: string }[] }).results[0]!.title).toMatch(/VPN/i);
  });

  it('tickets go to Jira: create (label + property), get (fenced), comment, a keyed retry makes no second issue, other projects read NOT_FOUND', async () => {
    const jira = peers.jira;
    const create = {
      summary: 'Outlook asks for the password every hour',
      description: 'Since the Windows update on Monday.\nOutlook 365 on the company laptop.',
      requester: USER,
      priority: 'high',
      reason,
      idempotency_key: 'e2e-ticket-create-0001',
    };
    const r = await call('ticket_create', create);
    expect(r.isError, textOf(r)).toBeFalsy();
    const key = (r.structuredContent as { key: string }).key;
    expect(key).toMatch(/^IT-\d+$/);

    const inIt = () => jira.issues.filter((i) => i.project === 'IT');
    expect(inIt()).toHaveLength(1);
    const issue = inIt()[0]!;
    expect(issue).toMatchObject({ key, summary: create.summary, priority: 'High', reporter: 'acc-mlopez' });
    expect(adfText(issue.description)).toContain('Outlook 365 on the company laptop.');
    expect(issue.labels).toContain(`requester-${USER}`);
    const hash = issue.labels.find((l) => l.startsWith('itguard-req-'))?.slice('itguard-req-'.length);
    expect(hash).toMatch(/^[0-9a-f]{64}$/);
    expect(issue.properties.get('itguard.request')).toEqual({ request_id_sha256: hash, actor: 'helpdesk-agent' });
    // Only the hash of the request id goes to Jira.
    expect(JSON.stringify([issue.labels, [...issue.properties]])).not.toContain(create.idempotency_key);

    const got = await call('ticket_get', { key });
    expect(got.isError, textOf(got)).toBeFalsy();
    expect(textOf(got)).toMatch(
      new RegExp(
        `<(untrusted-data-[0-9a-f]+) source="ticket ${key}">\\nSummary: ${create.summary}\\n[\\s\\S]*Since the Windows update on Monday\\.[\\s\\S]*\\n</\\1>`,
      ),
    );
    expect((got.structuredContent as { ticket: unknown }).ticket).toMatchObject({
      key,
      summary: create.summary,
      requester: USER,
      priority: 'high',
      status: 'open',
      comments: [],
    });

    const body = 'Asked Maria to sign out of Outlook once and restart it.';
    const c = await call('ticket_comment', { key, body, reason, idempotency_key: 'e2e-ticket-comment-0001' });
    expect(c.isError, textOf(c)).toBeFalsy();
    const commentId = (c.structuredContent as { comment_id: string }).comment_id;
    expect(issue.comments).toHaveLength(1);
    expect(issue.comments[0]!.id).toBe(commentId);
    expect(adfText(issue.comments[0]!.body)).toContain(body);
    expect(issue.comments[0]!.properties.get('itguard.request')).toMatchObject({ actor: 'helpdesk-agent' });
    const again = await call('ticket_get', { key });
    expect(textOf(again)).toMatch(new RegExp(`<(untrusted-data-[0-9a-f]+) [^>]*>[\\s\\S]*${body}[\\s\\S]*</\\1>`));
    expect((again.structuredContent as { ticket: { comments: { body: string }[] } }).ticket.comments).toEqual([
      expect.objectContaining({ id: commentId, body }),
    ]);

    const posts = jira.count('POST', /^\/rest\/api\/3\/issue$/);
    const retry = await call('ticket_create', create);
    expect(retry.isError, textOf(retry)).toBeFalsy();
    expect(retry._meta?.['itguard/replay']).toBeDefined();
    expect((retry.structuredContent as { key: string }).key).toBe(key);
    expect(inIt()).toHaveLength(1);
    expect(jira.count('POST', /^\/rest\/api\/3\/issue$/)).toBe(posts);

    const stranger = await call('ticket_create', {
      ...create,
      requester: 'nobody',
      idempotency_key: 'e2e-ticket-create-0002',
    });
    expect(codeOf(stranger)).toBe('INVALID_ARGUMENT');
    expect(inIt()).toHaveLength(1);

    const hidden = await call('ticket_get', { key: peers.outside.key });
    expect(hidden.isError).toBe(true);
    expect(codeOf(hidden)).toBe('NOT_FOUND');
    expect(JSON.stringify(hidden)).not.toContain(peers.outside.summary);
  });

  it('password_reset with the user’s TOTP code in a form: old password locked out, link mailed, new password set on the page', async () => {
    const { slapd, smtp } = peers;
    const dn = slapd.dn(USER);
    const pwdReset = () =>
      slapd.asRoot(async (c) => {
        const { searchEntries } = await c.search(dn, { scope: 'base', attributes: ['pwdReset'] });
        const v = [searchEntries[0]?.pwdReset ?? []].flat().map(String);
        return v.length ? v.join(',') : undefined;
      });
    expect(await slapd.canBind(dn, slapd.passwords[USER]!)).toBe(true);
    expect(await pwdReset()).toBeUndefined();

    // A code that is not the user's is refused, and nothing happens.
    const totp = OTPAuth.URI.parse(uris[USER]!) as OTPAuth.TOTP;
    const near = [-1, 0, 1].map((s) => totp.generate({ timestamp: Date.now() + s * 30_000 }));
    const wrongCode = ['000000', '111111', '222222', '333333'].find((c) => !near.includes(c))!;
    answer = () => ({ action: 'accept', content: { code: wrongCode } });
    const refused = await call('password_reset', { user: USER, reason: 'locked out; identity checked on a call back' });
    expect(codeOf(refused), textOf(refused)).toBe('APPROVAL_DENIED');
    expect(smtp.received).toHaveLength(0);
    expect(await slapd.canBind(dn, slapd.passwords[USER]!)).toBe(true);

    const askedBefore = asked.length;
    answer = () => {
      const code = OTPAuth.URI.parse(uris[USER]!).generate();
      typed.push(code);
      return { action: 'accept', content: { code } };
    };
    const r = await call('password_reset', { user: USER, reason: 'locked out; identity checked on a call back' });
    answer = () => ({ action: 'decline' });
    resetResult = r;
    expect(r.isError, textOf(r)).toBeFalsy();
    expect(asked.length - askedBefore).toBe(1);
    const form = asked[askedBefore]!;
    expect(form.message).toContain(USER);
    expect(JSON.stringify(form)).toContain('"code"');
    expect(textOf(r)).toMatch(/reset link was sent to m\*\*\*@example\.com/);
    expect(r.structuredContent).toMatchObject({
      user: USER,
      must_change_at_next_login: true,
      reset_link_sent_to: 'm***@example.com',
    });

    expect(smtp.received).toHaveLength(1);
    const mail = smtp.received[0]!;
    expect(mail.to).toEqual([`${USER}@example.com`]);
    expect(mail.from).toBe(peers.from);
    const m = /(http:\/\/127\.0\.0\.1:\d+\/reset\/([A-Za-z0-9_-]+))/.exec(mail.text);
    expect(m, mail.text).not.toBeNull();
    secret.link = m![1]!;
    secret.token = m![2]!;

    // The directory: the old password no longer binds, and must-change is set.
    expect(await slapd.canBind(dn, slapd.passwords[USER]!)).toBe(false);
    expect(await pwdReset()).toBe('TRUE');

    // The user follows the link: the page's form, then a strong passphrase.
    const page = await fetch(secret.link);
    expect(page.status).toBe(200);
    const html = await page.text();
    expect(html).toMatch(/name="password"/);
    expect(html).toMatch(/name="confirm"/);
    const action = /<form method="post" action="([^"]+)"/.exec(html)?.[1];
    expect(action).toBeDefined();
    secret.password = `granite lantern ${randomBytes(5).toString('hex')} orbit`;
    const origin = new URL(secret.link).origin;
    const done = await fetch(new URL(action!, secret.link), {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded', origin },
      body: new URLSearchParams({ password: secret.password, confirm: secret.password }).toString(),
    });
    const doneHtml = await done.text();
    expect(done.status, doneHtml).toBe(200);
    expect(doneHtml).toMatch(/Password set/);

    expect(await slapd.canBind(dn, secret.password)).toBe(true);
    expect(await pwdReset()).toBeUndefined();
    // The link worked once.
    expect((await fetch(secret.link)).status).toBe(404);
  });

  it('password_reset of an admins member is refused with POLICY_DENIED before anyone is prompted or mailed', async () => {
    const askedBefore = asked.length;
    const mailsBefore = peers.smtp.received.length;
    answer = () => {
      typed.push(OTPAuth.URI.parse(uris[ADMIN]!).generate());
      return { action: 'accept', content: { code: typed.at(-1)! } };
    };
    const r = await call('password_reset', { user: ADMIN, reason });
    answer = () => ({ action: 'decline' });
    expect(codeOf(r), textOf(r)).toBe('POLICY_DENIED');
    expect(textOf(r)).toMatch(/admins/);
    expect(asked.length).toBe(askedBefore);
    expect(peers.smtp.received.length).toBe(mailsBefore);
    expect(await peers.slapd.canBind(peers.slapd.dn(ADMIN), peers.slapd.passwords[ADMIN]!)).toBe(true);
  });

  it('itguard outbox --json shows the delivery via smtp, without the link', () => {
    for (const flags of [[], ['--show-links']]) {
      const r = cli(['outbox', '--json', ...flags]);
      expect(r.code, r.stderr).toBe(0);
      const rows = JSON.parse(r.stdout) as { username: string; via: string; channel: string; body: string }[];
      expect(rows).toHaveLength(1);
      expect(rows[0]).toMatchObject({ username: USER, via: 'smtp', channel: 'email' });
      expect(rows[0]!.body).not.toContain(secret.token);
      expect(rows[0]!.body).not.toMatch(/https?:\/\/|\/reset\//);
    }
  });

  it('no link, token, new password or TOTP code in the tool result, the server log or the audit', () => {
    expect(secret.token).not.toBe('');
    expect(typed.length).toBeGreaterThan(0);
    const tail = cli(['audit', 'tail', '--json', '--n', '1000']);
    expect(tail.code, tail.stderr).toBe(0);
    const rows = JSON.parse(tail.stdout) as { event: string; tool: string | null; actor: string }[];
    expect(rows.some((x) => x.tool === 'password_reset')).toBe(true);
    expect(rows.some((x) => x.event === 'password.changed' && x.actor === `user:${USER}`)).toBe(true);
    const exported = cli(['audit', 'export']);
    expect(exported.code, exported.stderr).toBe(0);
    expect(cli(['audit', 'verify']).code).toBe(0);

    const places = {
      'the password_reset result': JSON.stringify(resetResult),
      'the server stderr': stderr,
      'audit tail --json': tail.stdout,
      'audit export': exported.stdout,
    };
    expect(stderr).toMatch(/serving MCP over stdio/);
    for (const [where, text] of Object.entries(places)) {
      for (const s of [secret.link, secret.token, secret.password]) {
        expect(text.includes(s), `${where} contains ${s === secret.password ? 'the new password' : 'the link'}`).toBe(
          false,
        );
      }
      for (const code of typed) expect(text, `${where} contains a TOTP code`).not.toMatch(codeToken(code));
    }
  });
});
