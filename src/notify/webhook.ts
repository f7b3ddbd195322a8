/**
 * Signed webhooks after Standard Webhooks 1.0.0 (standard-webhooks/standard-webhooks `spec/standard-webhooks.md`):
 * headers `webhook-id` (the job id: the same on every retry, the receiver's idempotency key), `webhook-timestamp`
 * (unix seconds of this attempt) and `webhook-signature` (`v1,<base64 HMAC-SHA256 of "{id}.{timestamp}.{body}">`).
 * The secret is `whsec_<base64>` (its decoded bytes are the key), as the spec's libraries take it; any other value
 * is used as its UTF-8 bytes. 2xx is delivered; 410 Gone means the receiver asks us to stop (failed, not retried);
 * 408, 429 and 5xx are retried; other 4xx are permanent. Redirects are not followed (no hop to an internal address).
 */
import { createHmac } from 'node:crypto';
import { SendError } from './send-error.js';

export const WEBHOOK_TIMEOUT_MS = 15_000;

export function webhookKey(secret: string): Buffer {
  return secret.startsWith('whsec_') ? Buffer.from(secret.slice(6), 'base64') : Buffer.from(secret, 'utf8');
}

export function signWebhook(secret: string, id: string, timestampS: number, body: string): string {
  const mac = createHmac('sha256', webhookKey(secret)).update(`${id}.${timestampS}.${body}`).digest('base64');
  return `v1,${mac}`;
}

export async function sendWebhook(
  url: string,
  secret: string,
  id: string,
  body: string,
  nowMs: number,
  signal: AbortSignal,
): Promise<string> {
  const ts = Math.floor(nowMs / 1000);
  let res: Response;
  try {
    res = await fetch(url, {
      method: 'POST',
      headers: {
        'content-type': 'application/json',
        'user-agent': 'itguard-notify',
        'webhook-id': id,
        'webhook-timestamp': String(ts),
        'webhook-signature': signWebhook(secret, id, ts, body),
      },
      body,
      signal: AbortSignal.any([signal, AbortSignal.timeout(WEBHOOK_TIMEOUT_MS)]),
      redirect: 'manual',
    });
    await res.arrayBuffer().catch(() => undefined);
  } catch (e) {
    throw new SendError(`webhook: ${(e as Error).name === 'TimeoutError' ? 'timed out' : 'unreachable'}`, true);
  }
  if (res.status >= 200 && res.status < 300) return `HTTP ${res.status}`;
  if (res.status === 410) throw new SendError('webhook: HTTP 410 (the receiver asked us to stop)', false);
  const retryAfter = Number(res.headers.get('retry-after'));
  const transient = res.status === 408 || res.status === 429 || res.status >= 500;
  throw new SendError(
    `webhook: HTTP ${res.status}`,
    transient,
    transient && Number.isFinite(retryAfter) && retryAfter > 0 ? retryAfter * 1000 : undefined,
  );
}
