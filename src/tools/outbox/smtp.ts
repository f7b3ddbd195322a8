/**
 * The SMTP outbox adapter (DESIGN §5 "Ports", §8 `backends.outbox: { kind: smtp, url_env: SMTP_URL, from }`):
 * delivers a reset or verification link through a relay with nodemailer.
 *
 * Security rules held here, not left to the relay:
 * - TLS is required: `smtps://` (implicit TLS) or `smtp://` with STARTTLS required (a relay that does not offer it
 *   fails the send). Plain SMTP without TLS is accepted only for loopback hosts, and only when asked for with
 *   `requireTls: false`. Certificates are always verified (`ca` adds a trust anchor; there is no switch to skip it).
 * - The URL carries host, port and credentials only: query parameters (which nodemailer would turn into transport
 *   options such as `ignoreTLS` or `tls.rejectUnauthorized`) are refused at construction.
 * - The message text holds a one-time link: it is never logged, and it is scrubbed from anything a relay echoes
 *   back into an error. Recipient addresses in replies are masked.
 * - A retry with the same request id carries the same Message-ID (derived from the request id) and the same
 *   `X-Itguard-Request` header (a hash: the request id names the principal), so a relay or mailbox can recognise it.
 *   SMTP itself cannot refuse a second delivery: not sending twice is the caller's outbox record.
 */
import { createHash } from 'node:crypto';
import addressparser from 'nodemailer/lib/addressparser';
import type { SMTPTransportOptions } from 'nodemailer/lib/smtp-transport';
import { isLoopbackHost } from '../../loopback.js';
import { BackendError, type CallOpts, type ProbeReport, type WriteOpts } from '../../core/backend.js';
import type { Message, OutboxPort } from '../../core/ports/outbox.js';

export interface SmtpOutboxConfig {
  /** `smtps://[user:pass@]host[:port]` or `smtp://[user:pass@]host[:port]`; read by the caller from an env var. */
  url: string;
  /** The From address, e.g. `it-helpdesk@example.com` or `"IT Helpdesk" <it-helpdesk@example.com>`. */
  from: string;
  /** Deadline for one delivery or probe, connection to final reply (default 20 000 ms). */
  timeoutMs?: number;
  /** Default true. `false` allows plain `smtp://` without STARTTLS, to loopback hosts only. */
  requireTls?: boolean;
  /** Extra trust anchor(s) in PEM (e.g. the contents of the policy's `ca_file`), for a relay with a private CA. */
  ca?: string | Buffer | (string | Buffer)[];
  /** Where delivery outcomes are logged (pino-compatible). Never receives the message text or the raw request id. */
  log?: SmtpLog;
}

export interface SmtpLog {
  info(obj: object, msg: string): void;
  warn(obj: object, msg: string): void;
}

const DEFAULT_TIMEOUT_MS = 20_000;
const NOOP_LOG: SmtpLog = { info: () => undefined, warn: () => undefined };

/** The rule, as named in errors: DESIGN §8. */
export const PLAIN_SMTP_RULE = 'SMTP without TLS is accepted only for loopback hosts';

type TlsMode = 'smtps' | 'starttls' | 'none';

/** The hash used for Message-ID and X-Itguard-Request: stable for a request id, reveals nothing of it. */
export const requestHash = (requestId: string): string => createHash('sha256').update(requestId).digest('hex');

function singleAddress(value: string, what: string): string {
  if (/[\r\n]/.test(value)) throw new Error(`${what} must be one e-mail address (no line breaks)`);
  const parsed = addressparser(value, { flatten: true });
  const first = parsed[0];
  if (parsed.length !== 1 || !first?.address || !/^[^@\s]+@[^@\s]+$/.test(first.address)) {
    throw new Error(`${what} must be exactly one e-mail address`);
  }
  return first.address;
}

const maskEmail = (address: string): string => {
  const [local = '', domain = ''] = address.split('@');
  return `${local.slice(0, 1)}***@${domain}`;
};

const maskUser = (user: string): string => (user.includes('@') ? maskEmail(user) : `${user.slice(0, 1)}***`);

/** Words of the message text long enough to be (part of) a link or token: never echoed into errors. */
function secretsOf(text: string): string[] {
  const urls = text.match(/\b[a-z][a-z0-9+.-]*:\/\/\S+/gi) ?? [];
  const words = text.split(/[\s"'<>()[\]{}?&=#/,;]+/).filter((w) => w.length >= 12);
  return [...new Set([...urls, ...words])].sort((a, b) => b.length - a.length);
}

const escapeRe = (w: string): string => w.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

/**
 * Where a relay's reply starts quoting the message (three words of it in a row, whitespace aside, or a link or
 * token of it), or undefined.
 */
function echoAt(reply: string, text: string, secrets: readonly string[]): number | undefined {
  let cut: number | undefined;
  const at = (i: number): void => {
    if (i >= 0 && (cut === undefined || i < cut)) cut = i;
  };
  for (const t of secrets) at(reply.indexOf(t));
  const words = text.split(/\s+/).filter(Boolean);
  for (let i = 0; i + 3 <= words.length; i++) {
    const m = new RegExp(
      words
        .slice(i, i + 3)
        .map(escapeRe)
        .join('\\s+'),
    ).exec(reply);
    if (m) at(m.index);
  }
  return cut;
}

/**
 * A relay's reply made safe for an error message or a log line: what it says up to where it quotes the message
 * (a relay that echoes the body would otherwise carry the link), one line, printable, addresses masked.
 */
function scrub(s: string, text: string, secrets: readonly string[]): string {
  const cut = echoAt(s, text, secrets);
  let out = cut === undefined ? s : `${s.slice(0, cut).trimEnd()} [message text withheld]`;
  for (const t of secrets) out = out.split(t).join('[redacted]');
  out = out.replace(/[\r\n\t]+/g, ' ').replace(/[^\x20-\x7e]/g, '?');
  out = out.replace(/[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}/g, maskEmail);
  return out.length > 240 ? `${out.slice(0, 240)}...` : out;
}

interface SmtpErrorLike {
  code?: string;
  originalCode?: string;
  responseCode?: number;
  response?: string;
  command?: string;
  permanent?: boolean;
  message?: string;
  timeoutType?: string;
}

const TLS_CERT_CODE =
  /CERT|SELF_SIGNED|UNABLE_TO_VERIFY|UNABLE_TO_GET_ISSUER|ERR_TLS_|ERR_SSL_|HOSTNAME_MISMATCH|ALTNAME|WRONG_VERSION/;

/**
 * Classifies a nodemailer failure. Connection trouble, timeouts and 4xx replies are retryable; 5xx rejections,
 * AUTH failures, TLS failures and configuration errors are not.
 */
function classify(e: unknown, text: string, secrets: readonly string[]): BackendError {
  const err = (e ?? {}) as SmtpErrorLike;
  const code = typeof err.code === 'string' ? err.code : undefined;
  const original = typeof err.originalCode === 'string' ? err.originalCode : undefined;
  const replyCode = typeof err.responseCode === 'number' ? err.responseCode : undefined;
  const reply = typeof err.response === 'string' && err.response ? scrub(err.response, text, secrets) : undefined;
  const command = typeof err.command === 'string' ? scrub(err.command, text, secrets).split(':')[0] : undefined;
  const details: Record<string, unknown> = {
    ...(code ? { smtp_error: code } : {}),
    ...(original ? { smtp_cause: original } : {}),
    ...(replyCode !== undefined ? { smtp_code: replyCode } : {}),
    ...(command ? { smtp_command: command } : {}),
  };
  const said = reply ?? (replyCode !== undefined ? String(replyCode) : undefined);
  const detail = said ?? scrub(err.message ?? 'unknown error', text, secrets);
  const tempReply = replyCode !== undefined && replyCode >= 400 && replyCode < 500;

  if (code === 'EAUTH' || code === 'ENOAUTH') {
    const msg =
      code === 'ENOAUTH'
        ? 'SMTP AUTH failed: the relay requires credentials and the SMTP URL has none'
        : `SMTP AUTH failed: ${detail}`;
    // A 454 "temporary authentication failure" may pass later; a 535 (bad credentials) will not.
    return new BackendError(msg, tempReply, { ...details, stage: 'auth' });
  }
  if (
    code === 'ETLS' ||
    code === 'EREQUIRETLS' ||
    TLS_CERT_CODE.test(original ?? '') ||
    TLS_CERT_CODE.test(code ?? '')
  ) {
    return new BackendError(`SMTP TLS failed: ${detail}`, false, { ...details, stage: 'tls' });
  }
  if (replyCode === 530) {
    return new BackendError(`SMTP AUTH required by the relay: ${detail}`, false, { ...details, stage: 'auth' });
  }
  if (code === 'ECONFIG') return new BackendError(`SMTP configuration error: ${detail}`, false, details);
  if (replyCode !== undefined && replyCode >= 400) {
    const permanent = typeof err.permanent === 'boolean' ? err.permanent : replyCode >= 500 && replyCode !== 503;
    const where = command ? ` ${command}` : '';
    return permanent
      ? new BackendError(`SMTP relay rejected${where} (permanent): ${detail}`, false, details)
      : new BackendError(`SMTP relay deferred${where} (temporary): ${detail}`, true, details);
  }
  if (code === 'ETIMEDOUT') {
    return new BackendError(`SMTP relay timed out (${err.timeoutType ?? 'timeout'})`, true, {
      ...details,
      outcome_unknown: true,
    });
  }
  // ECONNECTION, ESOCKET (ECONNREFUSED, ECONNRESET, ...), EDNS, EPROTOCOL and anything unforeseen: the relay may
  // be back later. The raw message of a socket error names only the address and errno.
  return new BackendError(`SMTP relay unreachable or failed: ${original ?? code ?? 'error'}: ${detail}`, true, details);
}

/** A signal that fires on the caller's abort or after timeoutMs, and says which. */
function deadline(signal: AbortSignal, timeoutMs: number): { signal: AbortSignal; timedOut: () => boolean } {
  const timer = AbortSignal.timeout(timeoutMs);
  return { signal: AbortSignal.any([signal, timer]), timedOut: () => timer.aborted && !signal.aborted };
}

export class SmtpOutbox implements OutboxPort {
  readonly kind = 'smtp';
  readonly recordsItself = false;
  readonly channels = ['email'] as const;
  private readonly host: string;
  private readonly port: number;
  private readonly tlsMode: TlsMode;
  private readonly auth: { user: string; pass: string } | undefined;
  private readonly fromHeader: string;
  private readonly fromAddress: string;
  private readonly timeoutMs: number;
  private readonly options: SMTPTransportOptions;
  private readonly log: SmtpLog;
  /** The relay without credentials, for errors and probe reports. */
  readonly target: string;

  constructor(cfg: SmtpOutboxConfig) {
    let url: URL;
    try {
      url = new URL(cfg.url);
    } catch {
      throw new Error('outbox smtp: url is not a valid URL (expected smtp://host:port or smtps://host:port)');
    }
    if (url.protocol !== 'smtp:' && url.protocol !== 'smtps:') {
      throw new Error(`outbox smtp: url must start with smtp:// or smtps://, not ${url.protocol}//`);
    }
    if (url.search || url.hash || (url.pathname && url.pathname !== '/')) {
      throw new Error(
        'outbox smtp: url takes host, port and credentials only (no path or query parameters: TLS settings are not configurable through the URL)',
      );
    }
    if (!url.hostname) throw new Error('outbox smtp: url has no host');
    this.host = url.hostname.replace(/^\[|\]$/g, '');
    const secure = url.protocol === 'smtps:';
    this.port = url.port ? Number(url.port) : secure ? 465 : 587;
    const requireTls = cfg.requireTls ?? true;
    this.tlsMode = secure ? 'smtps' : requireTls ? 'starttls' : 'none';
    if (this.tlsMode === 'none' && !isLoopbackHost(this.host)) {
      throw new Error(
        `outbox smtp: ${PLAIN_SMTP_RULE} (DESIGN §8); ${this.host} is not loopback: use smtps:// or smtp:// with STARTTLS (requireTls)`,
      );
    }
    this.auth =
      url.username || url.password
        ? { user: decodeURIComponent(url.username), pass: decodeURIComponent(url.password) }
        : undefined;
    this.fromHeader = cfg.from;
    this.fromAddress = singleAddress(cfg.from, 'outbox smtp: from');
    this.timeoutMs = cfg.timeoutMs ?? DEFAULT_TIMEOUT_MS;
    if (!Number.isFinite(this.timeoutMs) || this.timeoutMs <= 0) throw new Error('outbox smtp: timeoutMs must be > 0');
    this.log = cfg.log ?? NOOP_LOG;
    const hostForUrl = this.host.includes(':') ? `[${this.host}]` : this.host;
    this.target = `${url.protocol}//${hostForUrl}:${this.port}`;
    this.options = {
      host: this.host,
      port: this.port,
      secure,
      requireTLS: this.tlsMode === 'starttls',
      ignoreTLS: this.tlsMode === 'none',
      ...(this.auth ? { auth: { ...this.auth }, forceAuth: true } : {}),
      tls: {
        minVersion: 'TLSv1.2',
        rejectUnauthorized: true,
        ...(cfg.ca ? { ca: cfg.ca } : {}),
      },
      connectionTimeout: this.timeoutMs,
      greetingTimeout: this.timeoutMs,
      socketTimeout: this.timeoutMs,
      dnsTimeout: this.timeoutMs,
      // nodemailer's own logger would print recipients and, with debug, the message: never on.
      logger: false,
      debug: false,
      transactionLog: false,
      disableFileAccess: true,
      disableUrlAccess: true,
    };
  }

  async send(m: Message, o: WriteOpts): Promise<{ messageId: string }> {
    const hash = requestHash(o.requestId);
    const messageId = `<itguard.${hash.slice(0, 40)}@${this.fromAddress.split('@')[1]}>`;
    const secrets = secretsOf(m.text);
    if (m.channel !== 'email')
      throw new BackendError(
        `SMTP outbox delivers e-mail only; ${m.username}'s recovery channel is ${m.channel}`,
        false,
      );
    let to: string;
    try {
      to = singleAddress(m.to, 'recipient');
    } catch (e) {
      throw new BackendError(`SMTP send refused: ${(e as Error).message}`, false);
    }
    const logCtx = { outbox: 'smtp', relay: this.target, request: hash.slice(0, 16), to: maskEmail(to) };
    // Loaded on first use: `serve` does not pay for nodemailer unless mail goes out through a relay.
    const { default: nodemailer } = await import('nodemailer');
    if (o.signal.aborted) throw new BackendError('SMTP send aborted before it started; nothing was sent', false);

    const d = deadline(o.signal, this.timeoutMs);
    const transporter = nodemailer.createTransport({ ...this.options });
    try {
      const info = await transporter.sendMail({
        from: this.fromHeader,
        to,
        envelope: { from: this.fromAddress, to: [to] },
        subject: m.subject,
        text: m.text,
        messageId,
        headers: { 'X-Itguard-Request': hash, 'Auto-Submitted': 'auto-generated' },
        disableFileAccess: true,
        disableUrlAccess: true,
        signal: d.signal,
      });
      if (info.rejected.length > 0 || info.accepted.length === 0) {
        throw new BackendError('SMTP relay did not accept the recipient', false, { outcome_unknown: false });
      }
      this.log.info(
        { ...logCtx, message_id: messageId, smtp_reply: scrub(info.response ?? '', m.text, secrets) },
        'outbox mail delivered to relay',
      );
      return { messageId };
    } catch (e) {
      const be =
        e instanceof BackendError
          ? e
          : d.timedOut()
            ? new BackendError(`SMTP delivery timed out after ${this.timeoutMs} ms`, true, { outcome_unknown: true })
            : o.signal.aborted
              ? new BackendError('SMTP delivery aborted', false, { outcome_unknown: true })
              : classify(e, m.text, secrets);
      this.log.warn(
        { ...logCtx, retryable: be.retryable, error: be.message, ...be.details },
        'outbox mail not delivered',
      );
      throw be;
    } finally {
      transporter.close();
    }
  }

  /** Connects, EHLO, STARTTLS when configured, AUTH when the URL has credentials; sends nothing. */
  async probe(o: CallOpts): Promise<ProbeReport> {
    const checks: ProbeReport['checks'] = [];
    const report = (): ProbeReport => ({
      backend: 'outbox:smtp',
      target: this.target,
      ok: checks.every((c) => c.ok),
      checks,
    });
    const { default: SMTPConnection } = await import('nodemailer/lib/smtp-connection');
    const d = deadline(o.signal, this.timeoutMs);
    const conn = new SMTPConnection({ ...this.options });
    // Every step races the connection's own failure: an 'error' or 'end' at any point, kept listened to so that a
    // late error event never goes unhandled.
    let onAbort = (): void => undefined;
    const broken = new Promise<never>((_, reject) => {
      conn.on('error', reject);
      conn.once('end', () => reject(Object.assign(new Error('connection closed'), { code: 'ECONNECTION' })));
      onAbort = () => (conn.close(), reject(new Error('aborted')));
      d.signal.addEventListener('abort', onAbort, { once: true });
    });
    broken.catch(() => undefined);
    const step = (run: (done: (err?: Error | null) => void) => void): Promise<void> =>
      Promise.race([broken, new Promise<void>((resolve, reject) => run((err) => (err ? reject(err) : resolve())))]);
    let stage: 'connect' | 'tls' | 'auth' = 'connect';
    const tlsLabel =
      this.tlsMode === 'smtps' ? 'implicit TLS (smtps)' : this.tlsMode === 'starttls' ? 'STARTTLS' : 'none';
    try {
      if (d.signal.aborted) throw new Error('aborted');
      await step((done) => conn.connect((err) => done(err)));
      checks.push({ name: 'connect', ok: true, detail: `EHLO accepted by ${this.target}` });
      stage = 'tls';
      if (this.tlsMode === 'none') {
        checks.push({ name: 'tls', ok: true, detail: 'not used: plain SMTP to a loopback host' });
      } else {
        checks.push({
          name: 'tls',
          ok: conn.secure,
          detail: conn.secure ? `${tlsLabel}, certificate verified` : `${tlsLabel} required but not in use`,
        });
      }
      stage = 'auth';
      if (!this.auth) {
        checks.push({ name: 'auth', ok: true, detail: 'no credentials configured (relay by address)' });
      } else {
        const auth = this.auth;
        await step((done) => conn.login({ credentials: { user: auth.user, pass: auth.pass } }, done));
        checks.push({ name: 'auth', ok: true, detail: `AUTH accepted for ${maskUser(auth.user)}` });
      }
      conn.quit();
    } catch (e) {
      const why = d.timedOut()
        ? `timed out after ${this.timeoutMs} ms`
        : o.signal.aborted
          ? 'aborted'
          : classify(e, '', []).message;
      const failed = /^SMTP TLS failed/.test(why) ? 'tls' : /^SMTP AUTH failed/.test(why) ? 'auth' : stage;
      const order = ['connect', 'tls', 'auth'] as const;
      for (const name of order) {
        if (checks.some((c) => c.name === name)) continue;
        if (order.indexOf(name) < order.indexOf(failed)) checks.push({ name, ok: true });
        else if (name === failed) checks.push({ name, ok: false, detail: why });
        else checks.push({ name, ok: false, detail: `not checked (${failed} failed)` });
      }
      conn.close();
    } finally {
      d.signal.removeEventListener('abort', onAbort);
    }
    return report();
  }
}
