/**
 * The SMTP outbox adapter against real loopback SMTP servers (smtp-server, port 0): delivery, permanent and
 * temporary rejections, a relay that is down, AUTH, STARTTLS and implicit TLS with a self-signed certificate made
 * here with openssl, abort and timeout, the loopback-only rule for plain SMTP, and no link text in any error or log.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer, type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SMTPServer, type SMTPServerOptions, type SMTPServerSession } from 'smtp-server';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { BackendError } from '../../src/core/backend.js';
import { PLAIN_SMTP_RULE, requestHash, SmtpOutbox, type SmtpLog } from '../../src/tools/outbox/smtp.js';
import type { Message } from '../../src/core/ports/outbox.js';

const TOKEN = 'tok_9f8e7d6c5b4a39281706f5e4d3c2b1a0';
const LINK = `https://itguard.example.com/reset?token=${TOKEN}`;
const MESSAGE: Message = {
  username: 'bob',
  channel: 'email',
  to: 'bob@example.com',
  subject: 'Your password reset link',
  text: `Hello Bob,\n\nUse this one-time link to set a new password:\n${LINK}\n\nIT Helpdesk`,
};
const FROM = 'it-helpdesk@example.com';

interface Received {
  from: string;
  to: string[];
  raw: string;
  secure: boolean;
  user: unknown;
}

let tmp: string;
let key: string;
let cert: string;
const servers: SMTPServer[] = [];

beforeAll(() => {
  tmp = mkdtempSync(join(tmpdir(), 'itguard-smtp-'));
  execFileSync(
    'openssl',
    [
      'req',
      '-x509',
      '-newkey',
      'ec',
      '-pkeyopt',
      'ec_paramgen_curve:prime256v1',
      '-nodes',
      '-keyout',
      join(tmp, 'key.pem'),
      '-out',
      join(tmp, 'cert.pem'),
      '-days',
      '1',
      '-subj',
      '/CN=localhost',
      '-addext',
      'subjectAltName=IP:127.0.0.1,DNS:localhost',
    ],
    { stdio: 'ignore' },
  );
  key = readFileSync(join(tmp, 'key.pem'), 'utf8');
  cert = readFileSync(join(tmp, 'cert.pem'), 'utf8');
});

afterEach(async () => {
  await Promise.all(servers.splice(0).map((s) => new Promise<void>((r) => s.close(() => r()))));
});

afterAll(() => rmSync(tmp, { recursive: true, force: true }));

/** A loopback SMTP server on port 0; without TLS options it offers neither STARTTLS nor AUTH. */
async function startServer(
  opts: Partial<SMTPServerOptions> = {},
): Promise<{ port: number; received: Received[]; sessions: SMTPServerSession[]; closed: string[] }> {
  const received: Received[] = [];
  const sessions: SMTPServerSession[] = [];
  const closed: string[] = [];
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
          secure: session.secure,
          user: session.user,
        });
        callback(null, 'Queued as itg-1');
      });
    },
    onConnect(session, callback) {
      sessions.push(session);
      callback();
    },
    onClose(session) {
      closed.push(session.id);
    },
    ...opts,
  });
  servers.push(server);
  server.on('error', () => undefined);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  return { port: (server.server.address() as AddressInfo).port, received, sessions, closed };
}

const tlsServer = (extra: Partial<SMTPServerOptions> = {}) =>
  startServer({
    key,
    cert,
    disabledCommands: [],
    authOptional: false,
    onAuth(auth, _session, callback) {
      if (auth.username === 'itguard' && auth.password === 's3cret') callback(null, { user: 'itguard' });
      else callback(Object.assign(new Error('Invalid username or password'), { responseCode: 535 }));
    },
    ...extra,
  });

function capturingLog(): SmtpLog & { lines: string[] } {
  const lines: string[] = [];
  return {
    lines,
    info: (obj, msg) => lines.push(JSON.stringify({ ...obj, msg })),
    warn: (obj, msg) => lines.push(JSON.stringify({ ...obj, msg })),
  };
}

const opts = (requestId = 'helpdesk-agent:key-1:1733000000000') => ({
  requestId,
  signal: new AbortController().signal,
});

async function sendError(outbox: SmtpOutbox, m = MESSAGE, o = opts()): Promise<BackendError> {
  const e = await outbox.send(m, o).then(
    () => undefined,
    (err: unknown) => err,
  );
  expect(e).toBeInstanceOf(BackendError);
  return e as BackendError;
}

/** Headers of a raw message, unfolded, keyed in lower case; and its body (quoted-printable decoded). */
function parse(raw: string): { headers: Record<string, string>; body: string } {
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
  return { headers, body: body.replace(/\r\n/g, '\n') };
}

const freePort = async (): Promise<number> => {
  const s = createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', () => r()));
  const port = (s.address() as AddressInfo).port;
  await new Promise<void>((r) => s.close(() => r()));
  return port;
};

describe('SmtpOutbox: construction rules', () => {
  it('refuses plain smtp:// without TLS to a non-loopback host, naming the rule', () => {
    for (const url of ['smtp://smtp.example.com:25', 'smtp://10.0.0.5', 'smtp://[2001:db8::1]:25']) {
      expect(() => new SmtpOutbox({ url, from: FROM, requireTls: false })).toThrow(PLAIN_SMTP_RULE);
    }
  });

  it('accepts plain SMTP to loopback hosts, and TLS to any host', () => {
    for (const url of ['smtp://127.0.0.1:2525', 'smtp://localhost:25', 'smtp://[::1]:25', 'smtp://127.0.0.2']) {
      expect(() => new SmtpOutbox({ url, from: FROM, requireTls: false })).not.toThrow();
    }
    expect(new SmtpOutbox({ url: 'smtp://u:p@smtp.example.com', from: FROM }).target).toBe(
      'smtp://smtp.example.com:587',
    );
    expect(new SmtpOutbox({ url: 'smtps://smtp.example.com', from: FROM }).target).toBe('smtps://smtp.example.com:465');
  });

  it('refuses other schemes, query parameters (TLS switches) and a bad From', () => {
    expect(() => new SmtpOutbox({ url: 'http://smtp.example.com', from: FROM })).toThrow(/smtp:\/\/ or smtps:\/\//);
    expect(() => new SmtpOutbox({ url: 'smtps://smtp.example.com?tls.rejectUnauthorized=false', from: FROM })).toThrow(
      /no path or query/,
    );
    expect(() => new SmtpOutbox({ url: 'smtp://smtp.example.com?ignoreTLS=true', from: FROM })).toThrow(
      /no path or query/,
    );
    expect(() => new SmtpOutbox({ url: 'smtps://smtp.example.com', from: 'a@example.com, b@example.com' })).toThrow(
      /exactly one/,
    );
  });

  it('never puts the credentials of the URL into its target', () => {
    const o = new SmtpOutbox({ url: 'smtps://itguard:s3cret@smtp.example.com:465', from: FROM });
    expect(o.target).not.toContain('s3cret');
  });
});

describe('SmtpOutbox: delivery', () => {
  it('delivers From/To/Subject/body with a Message-ID derived from the request id', async () => {
    const srv = await startServer();
    const log = capturingLog();
    const outbox = new SmtpOutbox({
      url: `smtp://127.0.0.1:${srv.port}`,
      from: `"IT Helpdesk" <${FROM}>`,
      requireTls: false,
      log,
    });
    const requestId = 'helpdesk-agent:key-1:1733000000000';
    const { messageId } = await outbox.send(MESSAGE, opts(requestId));
    const hash = requestHash(requestId);
    expect(messageId).toBe(`<itguard.${hash.slice(0, 40)}@example.com>`);
    expect(srv.received).toHaveLength(1);
    const got = srv.received[0]!;
    expect(got.from).toBe(FROM);
    expect(got.to).toEqual(['bob@example.com']);
    const { headers, body } = parse(got.raw);
    expect(headers['from']).toBe(`IT Helpdesk <${FROM}>`);
    expect(headers['to']).toBe('bob@example.com');
    expect(headers['subject']).toBe(MESSAGE.subject);
    expect(headers['message-id']).toBe(messageId);
    expect(headers['x-itguard-request']).toBe(hash);
    expect(headers['auto-submitted']).toBe('auto-generated');
    expect(got.raw).not.toContain(requestId);
    expect(body.trim()).toBe(MESSAGE.text.trim());

    // A retry with the same request id carries the same Message-ID: the mailbox can tell it is the same mail.
    const again = await outbox.send(MESSAGE, opts(requestId));
    expect(again.messageId).toBe(messageId);
    expect(parse(srv.received[1]!.raw).headers['message-id']).toBe(messageId);
    const other = await outbox.send(MESSAGE, opts('helpdesk-agent:key-2:1733000000001'));
    expect(other.messageId).not.toBe(messageId);

    expect(log.lines.join('\n')).not.toContain(TOKEN);
    expect(log.lines.join('\n')).not.toContain(requestId);
    expect(log.lines.join('\n')).not.toContain('bob@example.com');
  });

  it('refuses a recipient that is more than one address, sending nothing', async () => {
    const srv = await startServer();
    const outbox = new SmtpOutbox({ url: `smtp://127.0.0.1:${srv.port}`, from: FROM, requireTls: false });
    const e = await sendError(outbox, { ...MESSAGE, to: 'bob@example.com, eve@evil.example' });
    expect(e.retryable).toBe(false);
    expect(srv.sessions).toHaveLength(0);
  });
});

describe('SmtpOutbox: failures', () => {
  it('a 550 for the recipient is a permanent, non-retryable BackendError naming the reply', async () => {
    const srv = await startServer({
      onRcptTo(address, _s, cb) {
        cb(Object.assign(new Error(`5.1.1 <${address.address}>: Recipient address rejected`), { responseCode: 550 }));
      },
    });
    const outbox = new SmtpOutbox({ url: `smtp://127.0.0.1:${srv.port}`, from: FROM, requireTls: false });
    const e = await sendError(outbox);
    expect(e.retryable).toBe(false);
    expect(e.message).toMatch(/550 5\.1\.1/);
    expect(e.message).toMatch(/RCPT TO/);
    expect(e.message).toContain('b***@example.com');
    expect(e.message).not.toContain('bob@example.com');
    expect(e.details).toMatchObject({ smtp_code: 550 });
    expect(srv.received).toHaveLength(0);
  });

  it('a 451 is a temporary, retryable BackendError', async () => {
    const srv = await startServer({
      onRcptTo(_a, _s, cb) {
        cb(Object.assign(new Error('4.7.1 Greylisted, try again later'), { responseCode: 451 }));
      },
    });
    const outbox = new SmtpOutbox({ url: `smtp://127.0.0.1:${srv.port}`, from: FROM, requireTls: false });
    const e = await sendError(outbox);
    expect(e.retryable).toBe(true);
    expect(e.message).toMatch(/451/);
  });

  it('a relay that is down is retryable', async () => {
    const port = await freePort();
    const outbox = new SmtpOutbox({ url: `smtp://127.0.0.1:${port}`, from: FROM, requireTls: false });
    const e = await sendError(outbox);
    expect(e.retryable).toBe(true);
    expect(e.message).toMatch(/ECONNREFUSED/);
    const report = await outbox.probe({ signal: new AbortController().signal });
    expect(report.ok).toBe(false);
    expect(report.checks.find((c) => c.name === 'connect')).toMatchObject({ ok: false });
  });

  it('a relay that never answers times out (retryable), and an abort rejects promptly', async () => {
    const srv = await startServer({
      onRcptTo() {
        /* never answers */
      },
    });
    const url = `smtp://127.0.0.1:${srv.port}`;
    const slow = new SmtpOutbox({ url, from: FROM, requireTls: false, timeoutMs: 400 });
    const t0 = Date.now();
    const e = await sendError(slow);
    expect(e.retryable).toBe(true);
    expect(e.message).toMatch(/timed out/);
    expect(Date.now() - t0).toBeLessThan(3000);

    const outbox = new SmtpOutbox({ url, from: FROM, requireTls: false, timeoutMs: 10_000 });
    const ac = new AbortController();
    setTimeout(() => ac.abort(new Error('client cancelled')), 150);
    const t1 = Date.now();
    const aborted = await sendError(outbox, MESSAGE, { requestId: 'r:abort:1', signal: ac.signal });
    expect(Date.now() - t1).toBeLessThan(1000);
    expect(aborted.message).toMatch(/aborted/);
    expect(aborted.details).toMatchObject({ outcome_unknown: true });
    // The transport is closed: the server sees the aborted connection go.
    expect(srv.sessions).toHaveLength(2);
    await expect.poll(() => srv.closed.includes(srv.sessions[1]!.id), { timeout: 1000 }).toBe(true);

    const already = new AbortController();
    already.abort();
    const before = await sendError(outbox, MESSAGE, { requestId: 'r:abort:2', signal: already.signal });
    expect(before.message).toMatch(/nothing was sent/);
    expect(srv.sessions).toHaveLength(2);

    const probeAc = new AbortController();
    setTimeout(() => probeAc.abort(), 100);
    const silent = await startServer({
      onConnect() {
        /* no greeting */
      },
    });
    const t2 = Date.now();
    const report = await new SmtpOutbox({
      url: `smtp://127.0.0.1:${silent.port}`,
      from: FROM,
      requireTls: false,
    }).probe({ signal: probeAc.signal });
    expect(Date.now() - t2).toBeLessThan(1000);
    expect(report.ok).toBe(false);
    expect(report.checks[0]).toMatchObject({ name: 'connect', ok: false, detail: 'aborted' });
  });

  it('no link text in any error message or log line, even when the relay echoes the message back', async () => {
    const srv = await startServer({
      onData(stream, _s, cb) {
        let raw = '';
        stream.setEncoding('utf8');
        stream.on('data', (c: string) => (raw += c));
        stream.on('end', () => {
          const body = parse(raw).body.replace(/\s+/g, ' ');
          cb(Object.assign(new Error(`5.7.1 Message rejected as spam: ${body}`), { responseCode: 554 }));
        });
      },
    });
    const log = capturingLog();
    const outbox = new SmtpOutbox({ url: `smtp://127.0.0.1:${srv.port}`, from: FROM, requireTls: false, log });
    const e = await sendError(outbox);
    expect(e.retryable).toBe(false);
    expect(e.message).toMatch(/554/);
    expect(e.message).toMatch(/Message rejected as spam: \[message text withheld\]$/);
    expect(e.message).not.toMatch(/Hello Bob|one-time link/);
    const everything = [e.message, JSON.stringify(e.details), ...log.lines].join('\n');
    expect(everything).not.toContain(TOKEN);
    expect(everything).not.toContain(LINK);
    expect(everything).not.toContain('itguard.example.com/reset');
    expect(log.lines.length).toBeGreaterThan(0);
  });
});

describe('SmtpOutbox: TLS and AUTH', () => {
  it('AUTH with the right password over STARTTLS, trusting the test CA: delivered, and the probe passes', async () => {
    const srv = await tlsServer();
    const outbox = new SmtpOutbox({ url: `smtp://itguard:s3cret@127.0.0.1:${srv.port}`, from: FROM, ca: cert });
    await outbox.send(MESSAGE, opts());
    expect(srv.received).toHaveLength(1);
    expect(srv.received[0]).toMatchObject({ secure: true, user: 'itguard' });
    const report = await outbox.probe({ signal: new AbortController().signal });
    expect(report).toMatchObject({ backend: 'outbox:smtp', ok: true, target: `smtp://127.0.0.1:${srv.port}` });
    expect(report.checks.map((c) => [c.name, c.ok])).toEqual([
      ['connect', true],
      ['tls', true],
      ['auth', true],
    ]);
    expect(srv.received).toHaveLength(1); // the probe sent nothing
    expect(JSON.stringify(report)).not.toContain('s3cret');
  });

  it('AUTH with a wrong password is not retryable, names AUTH, and the probe reports the auth failure', async () => {
    const srv = await tlsServer();
    const outbox = new SmtpOutbox({ url: `smtp://itguard:wrong@127.0.0.1:${srv.port}`, from: FROM, ca: cert });
    const e = await sendError(outbox);
    expect(e.retryable).toBe(false);
    expect(e.message).toMatch(/AUTH/);
    expect(e.message).toMatch(/535/);
    expect(e.message).not.toContain('wrong');
    const report = await outbox.probe({ signal: new AbortController().signal });
    expect(report.ok).toBe(false);
    expect(report.checks.map((c) => [c.name, c.ok])).toEqual([
      ['connect', true],
      ['tls', true],
      ['auth', false],
    ]);
    expect(report.checks[2]!.detail).toMatch(/AUTH/);
  });

  it('implicit TLS (smtps://) with the test CA', async () => {
    const srv = await tlsServer({ secure: true });
    const outbox = new SmtpOutbox({ url: `smtps://itguard:s3cret@127.0.0.1:${srv.port}`, from: FROM, ca: cert });
    await outbox.send(MESSAGE, opts());
    expect(srv.received[0]).toMatchObject({ secure: true });
  });

  it('an untrusted certificate is a non-retryable TLS failure (no switch turns verification off)', async () => {
    const srv = await tlsServer();
    const outbox = new SmtpOutbox({ url: `smtp://itguard:s3cret@127.0.0.1:${srv.port}`, from: FROM });
    const e = await sendError(outbox);
    expect(e.retryable).toBe(false);
    expect(e.message).toMatch(/TLS/);
    const report = await outbox.probe({ signal: new AbortController().signal });
    expect(report.checks.map((c) => [c.name, c.ok])).toEqual([
      ['connect', true],
      ['tls', false],
      ['auth', false],
    ]);
  });

  it('STARTTLS is required by default: a relay without it fails the send, nothing goes in plain text', async () => {
    const srv = await startServer();
    const outbox = new SmtpOutbox({ url: `smtp://127.0.0.1:${srv.port}`, from: FROM });
    const e = await sendError(outbox);
    expect(e.retryable).toBe(false);
    expect(e.message).toMatch(/TLS/);
    expect(srv.received).toHaveLength(0);
  });

  it('a relay that requires AUTH while the URL has no credentials: not retryable, naming AUTH', async () => {
    const srv = await tlsServer();
    const outbox = new SmtpOutbox({ url: `smtp://127.0.0.1:${srv.port}`, from: FROM, ca: cert });
    const e = await sendError(outbox);
    expect(e.retryable).toBe(false);
    expect(e.message).toMatch(/AUTH required/);
    expect(e.message).toMatch(/530/);
  });

  it('credentials configured but the relay does not take AUTH: refused, never sent unauthenticated', async () => {
    const srv = await startServer();
    const outbox = new SmtpOutbox({
      url: `smtp://itguard:s3cret@127.0.0.1:${srv.port}`,
      from: FROM,
      requireTls: false,
    });
    const e = await sendError(outbox);
    expect(e.retryable).toBe(false);
    expect(e.message).toMatch(/AUTH/);
    expect(srv.received).toHaveLength(0);
  });
});
