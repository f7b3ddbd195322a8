/**
 * The JSON-over-HTTPS transport the cloud adapters share (Microsoft Graph, Okta, Confluence): one authenticated
 * request with the vendor's retry rules, inside one call's deadline.
 *
 * - Rate limits: the vendor says how long to wait (`rateWait`: Graph and Confluence `Retry-After`, Okta
 *   `X-Rate-Limit-Reset`); the request is retried after that wait, never sooner, and given up at once with a
 *   retryable BackendError (`retry_after_s`) when the wait would outlast the call's deadline or `maxRetries`.
 *   Without a hint: bounded exponential backoff with full jitter.
 * - `transient(res)`: vendor answers that mean "not yet" (Graph's replication-delay 400) are retried with backoff.
 * - 502/503/504 and network failures: retried for reads and idempotent writes; for an `unsafe` write they are an
 *   unknown outcome, a retryable BackendError with `outcome_unknown` (the caller looks the result up instead).
 * - 401 with `auth(true)` available: the credential is fetched afresh once (Graph's cached token expired).
 * - The Authorization header is never in an error, a log line or `details`; vendor messages are quoted, clipped.
 */
import { BackendError } from '../core/backend.js';
import { errorCode, parseJson, sleep } from './http-common.js';
export { clip, retryAfterMs, sleep } from './http-common.js';

export interface CloudHttpConfig {
  /** "Microsoft Graph", "Okta", "Confluence": named in every error message. */
  vendor: string;
  baseUrl: URL;
  /** The Authorization header value; `fresh` asks for a new credential after a 401. */
  auth: (fresh: boolean, d: Deadline) => Promise<string>;
  maxRetries?: number;
  retryBaseMs?: number;
  fetch?: typeof fetch;
  random?: () => number;
  /** ms to wait before retrying a rate-limited answer, from the vendor's headers; undefined = no hint. */
  rateWait?: (res: CloudResponse) => number | undefined;
  /** A wait owed before sending at all (Okta: the remaining quota is 0 until its reset time). */
  owedWait?: () => number;
  /** Sees every answer (Okta records X-Rate-Limit-Remaining / -Reset). */
  observe?: (res: CloudResponse) => void;
  /** The vendor's own words for an error answer ("E0000047: API call exceeded rate limit …"), for messages. */
  said?: (res: CloudResponse) => string;
  /** An answer that means "not yet, retry shortly" (Graph's replication delay). */
  transient?: (res: CloudResponse) => boolean;
}

export interface CloudRequest {
  method: 'GET' | 'POST' | 'PUT' | 'DELETE';
  /** Relative to baseUrl, or an absolute URL on the same origin (a cursor or poll link). */
  path: string;
  query?: Record<string, string | number | undefined>;
  body?: unknown;
  /** What this request does, for error messages ("adding LT-1001 to the Slack group"). */
  what: string;
  /** A write that must not be resent after an unknown outcome. */
  unsafe?: boolean;
}

export interface CloudResponse {
  status: number;
  headers: Headers;
  body: unknown;
}

export interface Deadline {
  signal: AbortSignal;
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

const BACKOFF_CAP_MS = 8_000;

export class CloudHttp {
  constructor(private readonly cfg: CloudHttpConfig) {}

  get vendor(): string {
    return this.cfg.vendor;
  }

  async send(req: CloudRequest, d: Deadline): Promise<CloudResponse> {
    const url = this.url(req);
    const max = this.cfg.maxRetries ?? 4;
    let fresh = false;
    for (let attempt = 0; ; attempt++) {
      const owed = this.cfg.owedWait?.() ?? 0;
      // Security/politeness: a quota known to be spent is waited out before sending, never hammered.
      if (owed > 0) await this.pause(owed, d, req, { rate_limited: true, retry_after_s: Math.ceil(owed / 1000) });
      this.checkTime(d, req);
      let res: CloudResponse;
      try {
        const r = await (this.cfg.fetch ?? fetch)(url, {
          method: req.method,
          headers: {
            authorization: await this.cfg.auth(fresh, d),
            accept: 'application/json',
            ...(req.body === undefined ? {} : { 'content-type': 'application/json' }),
          },
          body: req.body === undefined ? undefined : JSON.stringify(req.body),
          redirect: 'error',
          signal: d.signal,
        });
        res = { status: r.status, headers: r.headers, body: parseJson(await r.text()) };
      } catch (e) {
        if (e instanceof BackendError) throw e;
        this.checkTime(d, req);
        const code = errorCode(e);
        if (req.unsafe) throw unknown(this.vendor, req, `connection failed (${code})`);
        if (attempt >= max)
          throw new BackendError(`${this.vendor} could not be reached while ${req.what} (${code}).`, true, {
            cause: code,
          });
        await this.pause(this.backoff(attempt), d, req, { cause: code });
        continue;
      }
      this.cfg.observe?.(res);
      if (res.status === 401 && !fresh && attempt < max) {
        fresh = true; // a cached credential may have expired: fetch a new one once
        continue;
      }
      if (res.status === 429) {
        const hint = this.cfg.rateWait?.(res);
        const wait = hint ?? this.backoff(attempt);
        const info = { status: 429, rate_limited: true, retry_after_s: Math.ceil(wait / 1000) };
        if (attempt >= max || wait > this.remaining(d))
          throw new BackendError(
            `${this.vendor} is rate limiting (429${this.said(res)}) while ${req.what}; retry later.`,
            true,
            info,
          );
        await this.pause(wait, d, req, info);
        continue;
      }
      if (this.cfg.transient?.(res)) {
        if (attempt >= max)
          throw new BackendError(`${this.vendor} is not ready yet while ${req.what}; retry shortly.`, true, {
            status: res.status,
          });
        await this.pause(this.backoff(attempt), d, req, { status: res.status });
        continue;
      }
      if (res.status === 502 || res.status === 503 || res.status === 504) {
        if (req.unsafe) throw unknown(this.vendor, req, `answered ${res.status}`);
        if (attempt >= max)
          throw new BackendError(`${this.vendor} is unavailable (${res.status}) while ${req.what}.`, true, {
            status: res.status,
          });
        await this.pause(this.cfg.rateWait?.(res) ?? this.backoff(attempt), d, req, { status: res.status });
        continue;
      }
      return res;
    }
  }

  private url(req: CloudRequest): URL {
    const url = new URL(req.path, this.cfg.baseUrl);
    // Security: a link taken from an answer (cursor, poll) must stay on the configured origin.
    if (url.origin !== this.cfg.baseUrl.origin)
      throw new BackendError(`${this.vendor} returned a link to another host while ${req.what}.`, false);
    for (const [k, v] of Object.entries(req.query ?? {})) if (v !== undefined) url.searchParams.set(k, String(v));
    return url;
  }

  private said(res: CloudResponse): string {
    const s = this.cfg.said?.(res);
    return s ? `: ${s}` : '';
  }

  remaining(d: Deadline): number {
    return d.endsAt - Date.now();
  }

  private backoff(attempt: number): number {
    return (this.cfg.random ?? Math.random)() * Math.min(BACKOFF_CAP_MS, (this.cfg.retryBaseMs ?? 250) * 2 ** attempt);
  }

  private async pause(ms: number, d: Deadline, req: CloudRequest, info: Record<string, unknown>): Promise<void> {
    if (ms > this.remaining(d))
      throw new BackendError(`${this.vendor} did not answer in time while ${req.what}; retry later.`, true, {
        ...info,
        timeout_ms: d.timeoutMs,
      });
    await sleep(ms, d.signal).catch(() => this.checkTime(d, req));
  }

  checkTime(d: Deadline, req: { what: string }): void {
    if (d.caller.aborted) throw new BackendError(`The call was aborted while ${req.what}.`, true, { aborted: true });
    if (d.signal.aborted || this.remaining(d) <= 0)
      throw new BackendError(
        `${this.vendor} did not answer within ${d.timeoutMs} ms while ${req.what}; retry later.`,
        true,
        { timeout_ms: d.timeoutMs },
      );
  }
}

const unknown = (vendor: string, req: CloudRequest, why: string): BackendError =>
  new BackendError(
    `${vendor} ${why} while ${req.what}; the outcome is unknown, so it was not resent. Retry the call: itguard checks first.`,
    true,
    { outcome_unknown: true },
  );

/** A plain object view of a JSON body (or {} for anything else). */
export const obj = (v: unknown): Record<string, unknown> =>
  typeof v === 'object' && v !== null && !Array.isArray(v) ? (v as Record<string, unknown>) : {};
export const str = (v: unknown): string | undefined => (typeof v === 'string' ? v : undefined);
