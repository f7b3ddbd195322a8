/**
 * Step 5. Idempotency for write tools: the explicit idempotency_key becomes the backend's request id, so a
 * backend that already saw it returns the first result instead of acting again.
 */
import type { Guard } from './types.js';

export const idempotency = (): Guard => (next) =>
  async function idempotencyGuard(call) {
    if (call.tool.effect !== 'write') return next(call);
    const key = call.args.idempotency_key;
    call.idempotencyKey = typeof key === 'string' ? `${call.principal.name}:${key}` : undefined;
    return next(call);
  };
