/**
 * Step 7. Human gates by tier. `auto` passes. The confirm / mfa / approval tiers arrive with the human-gates
 * work; until then a tool configured for them is refused, never waved through (fail closed).
 */
import { GuardError } from './errors.js';
import type { Guard } from './types.js';

export const approval = (): Guard => (next) =>
  async function approvalGuard(call) {
    const tier = call.toolPolicy.tier ?? call.tool.tier;
    if (tier === 'auto') return next(call);
    // Security: no gate implementation for this tier → deny rather than run without a human.
    throw new GuardError('APPROVAL_UNAVAILABLE', `${call.tool.name} needs ${tier} approval, which this server cannot collect yet.`, {
      details: { tier },
    });
  };
