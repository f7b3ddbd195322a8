/**
 * The kill switch, from the database (a reading at most 50 ms old: the cheap early refusal). The check
 * that guarantees nothing starts after an engagement is the fresh read right before the side effect (execute).
 */
import type { GuardDeps } from './deps.js';
import { GuardError } from '../core/errors.js';
import type { Guard } from './types.js';

export const killSwitch =
  (deps: Pick<GuardDeps, 'store'>): Guard =>
  (next) =>
    async function killSwitchGuard(call) {
      const ks = deps.store.killSwitch.state(50);
      // Security: while engaged nothing runs, reads included; an unreadable state throws and is refused (fail closed).
      if (ks.engaged && !call.tool.servesWhileKilled) {
        throw new GuardError('KILL_SWITCH_ENGAGED', `IT engaged the kill switch: ${ks.reason}.`, {
          details: { engaged_at: new Date(ks.changedAt).toISOString() },
        });
      }
      return next(call);
    };
