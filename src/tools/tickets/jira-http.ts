/**
 * The Jira Cloud transport: one authenticated JSON request with retries, inside one call's deadline.
 *
 * Retry policy (per request, never past the call's deadline or its abort signal):
 * - 429 and 503 mean "not processed": retried for every method. `Retry-After` is honoured (seconds or an HTTP
 *   date); without it, bounded exponential backoff with full jitter (random in [0, min(cap, base·2^n)]). When the
 *   wait would end after the deadline, or `maxRetries` is spent, it gives up at once with a retryable
 *   BackendError carrying `retry_after_s` and Jira's `RateLimit-Reason`.
 * - Network failures and other 5xx: retried with backoff for reads and PUTs (idempotent). For a POST that
 *   creates something (`unsafe`) they are an unknown outcome: the request may have been committed, so it is
 *   never resent; the caller gets `OutcomeUnknown` and looks the result up instead. A connection that was never
 *   made (refused, DNS, TLS) is certain not to have committed and is retried like a read.
 * - Abort (kill switch) and the deadline stop everything at once, sleeps included.
 *
 * Secrets: the Authorization header is built once and never appears in an error, a log line or `details`.
 * Error messages quote Jira's own `errorMessages` / `errors` (truncated), the status and what was being done.
 */
import { BackendError } from '../../core/backend.js';
import { clip, errorCode, parseJson, retryAfterMs, sleep } from '../http-common.js';
export { retryAfterMs, sleep } from '../http-common.js';

export interface HttpConfig {
  baseUrl: URL;
  email: string;
  apiToken: string;
  maxRetries: number;
  retryBaseMs: number;
  fetch: typeof fetch;
  random: () => number;
}

/** One port call's time budget: the caller's signal and a timeout, merged. */
export interface Deadline {
  signal: AbortSignal;
  /** The caller's own signal (kill switch), to tell an abort from a timeout. */
  caller: AbortSignal;
  endsAt: number;
  timeoutMs: number;
}

export function deadline(caller: AbortSignal, timeoutMs: number): Deadline {
  return {
    signal: AbortSignal.any([caller, AbortSignal.timeout(timeoutMs)]),
    caller,
    endsAt: Date.now() + timeoutMs,
    timeoutMs,
  };
}

export const remaining = (d: Deadline): number => d.endsAt - Date.now();

/** A POST that may or may not have been committed by Jira: the caller must look it up, never resend it. */
export class OutcomeUnknown extends Error {
  constructor(readonly why: string) {
    super(`outcome unknown: ${why}`);
    this.name = 'OutcomeUnknown';
  }
}

export interface JiraRequest {
  method: 'GET' | 'POST' | 'PUT';
  path: string;
  query?: Record<string, string | number | undefined>;
  body?: unknown;
  /** What this request does, for error messages ("creating an issue in IT"). */
  what: string;
  /** A POST that creates something: see the retry policy above. */
  unsafe?: boolean;
}

export interface JiraResponse {
  status: number;
  body: unknown;
}

const BACKOFF_CAP_MS = 8_000;
/** Connection errors that prove the request never reached Jira (safe to resend even a create). */
const NOT_SENT = new Set([
  'ECONNREFUSED',
  'ENOTFOUND',
  'EAI_AGAIN',
  'ENETUNREACH',
  'EHOSTUNREACH',
  'UND_ERR_CONNECT_TIMEOUT',
  'CERT_HAS_EXPIRED',
  'DEPTH_ZERO_SELF_SIGNED_CERT',
  'SELF_SIGNED_CERT_IN_CHAIN',
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
  'ERR_TLS_CERT_ALTNAME_INVALID',
]);

export class JiraHttp {
  readonly #auth: string;
  constructor(private readonly cfg: HttpConfig) {
    this.#auth = `Basic ${Buffer.from(`${cfg.email}:${cfg.apiToken}`).toString('base64')}`;
  }

  /** Sends one request with the retry policy; returns any final HTTP answer (the caller maps 4xx). */
  async send(req: JiraRequest, d: Deadline): Promise<JiraResponse> {
    const url = new URL(req.path, this.cfg.baseUrl);
    for (const [k, v] of Object.entries(req.query ?? {})) if (v !== undefined) url.searchParams.set(k, String(v));
    for (let attempt = 0; ; attempt++) {
      this.checkTime(d, req);
      let status: number;
      let headers: Headers;
      let text: string;
      try {
        const res = await this.cfg.fetch(url, {
          method: req.method,
          headers: {
            authorization: this.#auth,
            accept: 'application/json',
            ...(req.body === undefined ? {} : { 'content-type': 'application/json' }),
          },
          body: req.body === undefined ? undefined : JSON.stringify(req.body),
          redirect: 'error',
          signal: d.signal,
        });
        status = res.status;
        headers = res.headers;
        text = await res.text();
      } catch (e) {
        if (d.signal.aborted) {
          if (req.unsafe) throw new OutcomeUnknown(d.caller.aborted ? 'aborted' : 'timed out');
          this.checkTime(d, req);
        }
        const code = errorCode(e);
        if (req.unsafe && !NOT_SENT.has(code)) throw new OutcomeUnknown(`connection failed (${code})`);
        if (attempt >= this.cfg.maxRetries)
          throw new BackendError(`Jira could not be reached while ${req.what} (${code}).`, true, { cause: code });
        await this.pause(this.backoff(attempt), d, req, { cause: code });
        continue;
      }

      if (status === 429 || status === 503) {
        const after = retryAfterMs(headers.get('retry-after'));
        const info = {
          status,
          ...(after !== undefined ? { retry_after_s: Math.ceil(after / 1000) } : {}),
          ...(headers.get('ratelimit-reason') ? { rate_limit_reason: headers.get('ratelimit-reason') } : {}),
        };
        const wait = after ?? this.backoff(attempt);
        if (attempt >= this.cfg.maxRetries || wait > remaining(d))
          throw new BackendError(
            `Jira is ${status === 429 ? 'rate limiting' : 'unavailable'} (${status}) while ${req.what}; retry later.`,
            true,
            info,
          );
        await this.pause(wait, d, req, info);
        continue;
      }
      if (status >= 500) {
        if (req.unsafe) throw new OutcomeUnknown(`Jira answered ${status}`);
        if (attempt >= this.cfg.maxRetries)
          throw new BackendError(`Jira failed (${status}) while ${req.what}.`, true, { status });
        await this.pause(this.backoff(attempt), d, req, { status });
        continue;
      }
      return { status, body: parseJson(text) };
    }
  }

  /** Full jitter: uniform in [0, min(cap, base·2^attempt)]. */
  private backoff(attempt: number): number {
    return this.cfg.random() * Math.min(BACKOFF_CAP_MS, this.cfg.retryBaseMs * 2 ** attempt);
  }

  private async pause(ms: number, d: Deadline, req: JiraRequest, info: Record<string, unknown>): Promise<void> {
    if (ms > remaining(d))
      throw new BackendError(`Jira did not answer in time while ${req.what}; retry later.`, true, {
        ...info,
        timeout_ms: d.timeoutMs,
      });
    await sleep(ms, d.signal).catch(() => this.checkTime(d, req));
  }

  /** Throws when the call was aborted or its deadline passed. */
  checkTime(d: Deadline, req: { what: string }): void {
    if (d.caller.aborted) throw new BackendError(`The call was aborted while ${req.what}.`, true, { aborted: true });
    if (d.signal.aborted || remaining(d) <= 0)
      throw new BackendError(`Jira did not answer within ${d.timeoutMs} ms while ${req.what}; retry later.`, true, {
        timeout_ms: d.timeoutMs,
      });
  }
}

/**
 * A final non-2xx answer → BackendError. 401 names the credentials, 403 the permission, 400 the fields Jira
 * complained about (`details.fields`); none of them is retryable (the same request would fail the same way).
 */
export function failure(res: JiraResponse, what: string): BackendError {
  const body = (typeof res.body === 'object' && res.body !== null ? res.body : {}) as {
    errorMessages?: unknown;
    errors?: unknown;
  };
  const messages = Array.isArray(body.errorMessages) ? body.errorMessages.filter((m) => typeof m === 'string') : [];
  const errors =
    typeof body.errors === 'object' && body.errors !== null
      ? Object.entries(body.errors as Record<string, unknown>).map(([f, m]) => [f, String(m)] as const)
      : [];
  const said = clip([...messages, ...errors.map(([f, m]) => `${f}: ${m}`)].join('; '));
  const tail = said ? `: ${said}` : '';
  switch (res.status) {
    case 401:
      return new BackendError(
        `Jira rejected the credentials (401, authentication) while ${what}; check the configured e-mail and API token.`,
        false,
        { status: 401, reason: 'auth' },
      );
    case 403:
      return new BackendError(
        `Jira denied permission (403) while ${what}${tail}. The itguard account lacks a project permission.`,
        false,
        { status: 403, reason: 'permission' },
      );
    case 404:
      return new BackendError(`Jira found nothing (404) while ${what}${tail}.`, false, { status: 404 });
    case 400:
      return new BackendError(
        errors.length
          ? `Jira refused field(s) ${errors.map(([f]) => f).join(', ')} (400) while ${what}${tail}.`
          : `Jira refused the request (400) while ${what}${tail}.`,
        false,
        { status: 400, fields: errors.map(([f]) => f) },
      );
    default:
      return new BackendError(`Jira answered ${res.status} while ${what}${tail}.`, res.status >= 500, {
        status: res.status,
      });
  }
}
