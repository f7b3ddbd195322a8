/**
 * A call's abort signal: aborted when any parent aborts (the client's cancel, the kill switch) or when its
 * deadline passes. It does what `AbortSignal.any([...parents, AbortSignal.timeout(ms)])` does, without the weak
 * references and finalisation that cost every call on Node 20, and it is taken apart when the call is over:
 * `dispose()` clears the timer and removes the listeners from the long-lived parents.
 */
export interface Linked {
  readonly signal: AbortSignal;
  /** true once the deadline (not a parent) aborted the signal */
  timedOut(): boolean;
  dispose(): void;
}

export function linkedSignal(parents: readonly AbortSignal[], timeoutMs?: number): Linked {
  const ac = new AbortController();
  let timedOut = false;
  let timer: NodeJS.Timeout | undefined;
  const listeners: [AbortSignal, () => void][] = [];
  const dispose = (): void => {
    if (timer) clearTimeout(timer);
    timer = undefined;
    for (const [p, f] of listeners) p.removeEventListener('abort', f);
    listeners.length = 0;
  };
  const linked: Linked = { signal: ac.signal, timedOut: () => timedOut, dispose };
  for (const p of parents) {
    if (p.aborted) {
      dispose();
      ac.abort(p.reason);
      return linked;
    }
    const f = (): void => {
      dispose();
      ac.abort(p.reason);
    };
    p.addEventListener('abort', f, { once: true });
    listeners.push([p, f]);
  }
  if (timeoutMs !== undefined) {
    timer = setTimeout(() => {
      timedOut = true;
      dispose();
      ac.abort(new DOMException('The operation was aborted due to timeout', 'TimeoutError'));
    }, timeoutMs);
    timer.unref();
  }
  return linked;
}
