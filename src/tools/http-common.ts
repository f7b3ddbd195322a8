/**
 * What every HTTP backend adapter (Jira, and the cloud adapters through tools/cloud-http.ts) reads off an answer
 * the same way: `Retry-After`, a body that may or may not be JSON, the network error's code, a clipped excerpt, and
 * an abortable wait between retries.
 */

/** `Retry-After`: delay-seconds or an HTTP date (RFC 9110 §10.2.3); undefined when absent or unreadable. */
export function retryAfterMs(v: string | null, now = Date.now()): number | undefined {
  if (!v) return undefined;
  const s = v.trim();
  if (/^\d+$/.test(s)) return Number(s) * 1000;
  const at = Date.parse(s);
  return Number.isNaN(at) ? undefined : Math.max(0, at - now);
}

/** Sleeps, rejecting at once when the signal aborts. */
export function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal.aborted) return reject(signal.reason);
    const t = setTimeout(() => {
      signal.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    const onAbort = () => {
      clearTimeout(t);
      reject(signal.reason);
    };
    signal.addEventListener('abort', onAbort, { once: true });
  });
}

/** The body as JSON, or as the text it is when it is not JSON; undefined when empty. */
export function parseJson(text: string): unknown {
  if (!text) return undefined;
  try {
    return JSON.parse(text) as unknown;
  } catch {
    return text;
  }
}

/** A fetch failure's code (ECONNREFUSED, UND_ERR_SOCKET, ...) for the error message. */
export function errorCode(e: unknown): string {
  const cause = (e as { cause?: { code?: unknown } } | undefined)?.cause;
  const code = cause?.code ?? (e as { code?: unknown } | undefined)?.code;
  return typeof code === 'string' ? code : 'network error';
}

export const clip = (s: string, n = 300): string => (s.length > n ? `${s.slice(0, n)}…` : s);
