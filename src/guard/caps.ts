/** Step 6. Aggregate caps. */
import type { Guard } from './types.js';

export const caps = (): Guard => (next) =>
  async function capsGuard(call) {
    return next(call);
  };
