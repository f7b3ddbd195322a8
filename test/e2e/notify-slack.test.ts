/**
 * Approvers are told, end to end: a real `itguard serve --http` process with `notify:` (Slack through the Web API
 * stand-in, mail through the SMTP outbox to a loopback smtp-server, a Standard Webhooks receiver). An agent asks for a
 * licensed install over MCP; within seconds the approvers' Slack channel has a message with Approve/Deny and the
 * approver has a mail; a signed Approve click on /slack/actions approves it; the install runs exactly once and the
 * Slack message is updated with the outcome.
 */
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import type { CallToolResult } from '@modelcontextprotocol/sdk/types.js';
import Database from 'better-sqlite3';
import { SMTPServer } from 'smtp-server';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { CLI, runCli, serveHttp, type Served } from '../helpers/cli.js';
import { tempDir } from '../helpers/harness.js';
import { demoPolicy } from '../helpers/policy-builder.js';
import { SlackStandin } from '../helpers/slack-standin.js';
import { WebhookReceiver } from '../helpers/webhook-receiver.js';

const SIGNING = randomBytes(16).toString('hex');
const HOOK_SECRET = `whsec_${randomBytes(32).toString('base64')}`;

let tmp: ReturnType<typeof tempDir>;
let served: Served;
let db: string;
let policy: string;
let slack: SlackStandin;
let hook: WebhookReceiver;
let smtp: SMTPServer;
const mails: { to: string[]; raw: string }[] = [];
let env: Record<string, string>;

beforeAll(async () => {
  tmp = tempDir();
  db = join(tmp.dir, 'notify.db');
  policy = join(tmp.dir, 'p.yaml');
  slack = await new SlackStandin('xoxb-e2e', ['C0APPROVALS']).start();
  hook = await new WebhookReceiver(HOOK_SECRET).start();
  smtp = new SMTPServer({
    logger: false,
    authOptional: true,
    disabledCommands: ['STARTTLS', 'AUTH'],
    onData(stream, session, cb) {
      let raw = '';
      stream.setEncoding('utf8');
      stream.on('data', (c: string) => (raw += c));
      stream.on('end', () => {
        mails.push({ to: session.envelope.rcptTo.map((r) => r.address), raw });
        cb(null, 'Queued');
      });
    },
  });
  await new Promise<void>((r) => smtp.listen(0, '127.0.0.1', () => r()));
  const smtpPort = (smtp.server.address() as AddressInfo).port;
  writeFileSync(
    policy,
    demoPolicy()
      .approvals({ wait_seconds: 1 })
      .backend('outbox', { kind: 'smtp', url_env: 'SMTP_URL', from: 'it-helpdesk@example.com', require_tls: false })
      .set('notify', {
        approvers: { 'it-approver': { email: 'it-approvals@example.com', slack_user: 'U0APPROVER' } },
        slack: {
          bot_token_env: 'SLACK_BOT_TOKEN',
          signing_secret_env: 'SLACK_SIGNING_SECRET',
          channel: 'C0APPROVALS',
          api_url: slack.apiUrl,
        },
        webhooks: [{ url: hook.url, secret_env: 'HOOK_SECRET' }],
      })
      .yaml(),
  );
  env = {
    SMTP_URL: `smtp://127.0.0.1:${smtpPort}`,
    SLACK_BOT_TOKEN: 'xoxb-e2e',
    SLACK_SIGNING_SECRET: SIGNING,
    HOOK_SECRET,
  };
  served = await serveHttp(db, ['--policy', policy], env);
});
afterAll(async () => {
  await served?.stop();
  await slack?.close();
  await hook?.close();
  await new Promise<void>((r) => (smtp ? smtp.close(() => r()) : r()));
  tmp?.cleanup();
});

function runCliAsync(args: string[], extra: Record<string, string>): Promise<{ code: number | null; stdout: string }> {
  return new Promise((resolve) => {
    const p = spawn(process.execPath, [CLI, ...args], {
      env: { ...process.env, ...extra },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    p.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    p.on('exit', (code) => resolve({ code, stdout }));
  });
}

async function until<T>(what: string, f: () => T | undefined, ms = 8000): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = f();
    if (v !== undefined && v !== false) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}\n${served.stderr().slice(-3000)}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

it('an install request reaches Slack and mail within seconds, is approved from Slack, and runs once', async () => {
  const client = new Client({ name: 'agent', version: '1' });
  await client.connect(
    new StreamableHTTPClientTransport(new URL(served.url), {
      requestInit: { headers: { Authorization: `Bearer ${served.demoToken}` } },
    }),
  );
  const r = (await client.callTool({
    name: 'software_install',
    arguments: { user: 'jdoe', package: 'adobe-acrobat-pro', reason: 'needs to sign contracts' },
  })) as CallToolResult;
  const asked = Date.now();
  const id = (r._meta!['itguard/error'] as { code: string; request_id: string }).request_id;
  expect((r._meta!['itguard/error'] as { code: string }).code).toBe('APPROVAL_PENDING');

  const post = await until('the Slack message', () => slack.posts().find((p) => p.text.includes(id)));
  const mail = await until('the mail', () => mails.find((m) => m.raw.includes(id)));
  // "Within seconds": the call waited its 1 s; both notices were out well inside five more.
  expect(Date.now() - asked).toBeLessThan(5000);
  expect(mail.to).toEqual(['it-approvals@example.com']);
  expect(mail.raw).toContain('needs to sign contracts');
  expect(JSON.stringify(post.blocks)).toContain('itguard_approve');
  await until('the webhook', () => [...hook.accepted.values()].find((d) => d.body.data.request_id === id));

  const click = await slack.click(new URL(served.url).origin, {
    secret: SIGNING,
    user: 'U0APPROVER',
    requestId: id,
    action: 'approve',
  });
  expect(click.status).toBe(200);
  expect(click.ms).toBeLessThan(3000);

  let status = '';
  for (let i = 0; i < 80 && status !== 'succeeded'; i++) {
    const s = (await client.callTool({ name: 'request_status', arguments: { request_id: id } })) as CallToolResult;
    status = String((s.structuredContent as { status?: string } | undefined)?.status ?? '');
    if (status !== 'succeeded') await new Promise((res) => setTimeout(res, 250));
  }
  expect(status).toBe('succeeded');
  await until('the Slack update', () => slack.calls.find((c) => c.method === 'chat.update' && c.ts === post.ts));
  expect(slack.messages.get(`C0APPROVALS:${post.ts}`)!.text).toMatch(/^Approved: /);
  await client.close();

  const check = new Database(db, { readonly: true });
  try {
    const n = check.prepare("SELECT count(*) AS n FROM install_jobs WHERE package = 'adobe-acrobat-pro'").get() as {
      n: number;
    };
    expect(n.n).toBe(1);
  } finally {
    check.close();
  }
  // The operators' view: every notice of the request, sent, as one JSON document.
  const list = runCli(['notify', 'list', '--json', '--db', db, '--policy', policy], env);
  expect(list.code).toBe(0);
  const doc = JSON.parse(list.stdout) as { notifications: { request_id: string; channel: string; status: string }[] };
  const mine = doc.notifications.filter((n) => n.request_id === id);
  expect(mine.map((n) => n.channel).sort()).toEqual(['mail', 'slack', 'slack', 'webhook', 'webhook']);
  expect(mine.every((n) => n.status === 'sent')).toBe(true);

  // Asynchronously: the stand-ins live in this process and must keep answering while the CLI runs.
  const test = await runCliAsync(['notify', 'test', '--json', '--db', db, '--policy', policy], env);
  expect(test.code).toBe(0);
  const t = JSON.parse(test.stdout) as { ok: boolean; notifications: { channel: string; status: string }[] };
  expect(t.ok).toBe(true);
  expect(t.notifications.map((n) => `${n.channel}:${n.status}`).sort()).toEqual([
    'mail:sent',
    'slack:sent',
    'webhook:sent',
  ]);
  expect(slack.posts().some((p) => p.text.startsWith('itguard test notification'))).toBe(true);
}, 60_000);
