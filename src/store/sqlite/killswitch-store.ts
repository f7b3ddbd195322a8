/**
 * The kill switch lives in the database, so every process on the file sees it on its next check.
 * `set` changes this table only: the caller's unit of work appends the change's audit record in the same
 * transaction (guard/operator.ts `setKillSwitch`).
 */
import type { Db } from './db.js';
import type { KillSwitchState } from '../ports/types.js';
export type { KillSwitchState };

export class KillSwitchStore {
  private readonly read;
  private readonly write;
  constructor(
    db: Db,
    private readonly now: () => number = Date.now,
  ) {
    this.read = db.prepare<[], { engaged: number; reason: string; actor: string; changed_at: number }>(
      'SELECT engaged, reason, actor, changed_at FROM killswitch WHERE id = 1',
    );
    this.write = db.prepare('UPDATE killswitch SET engaged = ?, reason = ?, actor = ?, changed_at = ? WHERE id = 1');
  }

  private cached: { at: number; state: KillSwitchState } | undefined;

  /**
   * The switch as stored. `maxAgeMs` > 0 accepts a reading that recent (the pipeline's first, cheap check);
   * the check right before a side effect always reads the database. A change made through this instance is
   * seen at once.
   */
  state(maxAgeMs = 0): KillSwitchState {
    const t = performance.now();
    if (maxAgeMs > 0 && this.cached && t - this.cached.at < maxAgeMs) return this.cached.state;
    const r = this.read.get();
    if (!r) throw new Error('killswitch row missing');
    const state = { engaged: r.engaged === 1, reason: r.reason, actor: r.actor, changedAt: r.changed_at };
    this.cached = { at: t, state };
    return state;
  }

  /** Runs inside the caller's unit (its transaction). */
  set(engaged: boolean, reason: string, actor: string): KillSwitchState {
    this.cached = undefined;
    const at = this.now();
    this.write.run(engaged ? 1 : 0, reason, actor, at);
    return { engaged, reason, actor, changedAt: at };
  }
}
