/**
 * The kill switch on PostgreSQL (KillSwitchControl; DESIGN §5, notes §7): the `killswitch` row is the truth; NOTIFY
 * on channel `itguard_killswitch` (the migration's trigger, sent on commit, never replayed) only wakes replicas up.
 * `state()` must answer synchronously (the execute step reads it right before the effect), so it returns a view
 * kept fresh in the background:
 *  - re-read on LISTEN's connect and every reconnect (postgres.js `onlisten`), and on every notification; such a
 *    re-read always starts after the call for it (a read already in flight may predate the change: one more follows);
 *  - re-read (in the background) when a caller finds the view older than its `maxAgeMs`, so at most every
 *    `maxAgeMs` otherwise;
 *  - a change made through this instance (`set`, an operation of the caller's unit) is in the view once its unit
 *    has committed, before the unit's operations resolve (runner.ts afterCommit), then re-read: the replica that
 *    set the switch sees its own change at once, as SQLite's `state(0)` does; the others by NOTIFY;
 *  - fail closed: before the first successful read, and when the last one is older than `staleMs` (the store is
 *    unreachable), the switch reads as engaged.
 * `maxAgeMs` 0 ("read now") cannot block here: it answers from the view and starts a re-read.
 */
import type { KillSwitchControl } from '../ports/index.js';
import type { KillSwitchState } from '../ports/types.js';
import type { Tx } from '../unit.js';
import type { PgStore } from './connect.js';
import { afterCommit, txOf } from './runner.js';

export const KILLSWITCH_CHANNEL = 'itguard_killswitch';

interface Row {
  engaged: number;
  reason: string;
  actor: string;
  changed_at: number;
}

export interface PgKillSwitchOptions {
  /** A view older than this (ms) reads as engaged: the store cannot be read (default 10000). */
  staleMs?: number;
  /** Re-read this often even without notifications or callers (ms, default 5000; 0: never). */
  pollMs?: number;
  /** The clock of `changed_at` (default Date.now, as SQLite's KillSwitchStore). */
  now?: () => number;
}

export class PgKillSwitch implements KillSwitchControl {
  private view: { at: number; state: KillSwitchState } | undefined;
  private reading: Promise<void> | undefined;
  /** A read in flight may predate a change someone asked about: read once more after it. */
  private again = false;
  /** Bumped when this instance learns of a committed change: a read that began before it is older than the view. */
  private epoch = 0;
  private unlisten: (() => Promise<void>) | undefined;
  private timer: NodeJS.Timeout | undefined;
  private readonly staleMs: number;
  /** Successful reads (tests watch it). */
  reads = 0;

  constructor(
    private readonly pg: PgStore,
    private readonly o: PgKillSwitchOptions = {},
  ) {
    this.staleMs = o.staleMs ?? 10_000;
  }

  /** Starts listening and reads the row; resolves once the first reading is in (or rejects: fail closed stays). */
  async start(): Promise<void> {
    const meta = await this.pg.sql.listen(
      KILLSWITCH_CHANNEL,
      () => void this.refresh(),
      () => void this.refresh(),
    );
    this.unlisten = () => meta.unlisten();
    const poll = this.o.pollMs ?? 5000;
    if (poll > 0) {
      this.timer = setInterval(() => void this.refresh(), poll);
      this.timer.unref();
    }
    await this.refresh(true);
  }

  async stop(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    await this.unlisten?.().catch(() => undefined);
  }

  /**
   * Reads the row, starting after this call (a read in flight is followed by one more); one read at a time.
   * `rethrow` for start().
   */
  refresh(rethrow = false): Promise<void> {
    return this.read(true, rethrow);
  }

  /** `fresh`: the read must start after this call; otherwise a read in flight will do (a caller's background check). */
  private read(fresh: boolean, rethrow = false): Promise<void> {
    if (this.reading) {
      if (fresh) this.again = true;
    } else
      this.reading = (async () => {
        try {
          do {
            this.again = false;
            await this.readOnce();
          } while (this.again);
        } finally {
          this.reading = undefined;
        }
      })();
    return rethrow ? this.reading : this.reading.catch(() => undefined);
  }

  private async readOnce(): Promise<void> {
    const epoch = this.epoch;
    const [r] = await this.pg.sql<Row[]>`SELECT engaged, reason, actor, changed_at FROM killswitch WHERE id = 1`;
    if (!r) throw new Error('killswitch row missing: the PostgreSQL store was not migrated');
    this.reads++;
    // A change this instance committed while the read was under way is newer than what the read found.
    if (epoch !== this.epoch) return;
    this.view = {
      at: performance.now(),
      state: { engaged: r.engaged === 1, reason: r.reason, actor: r.actor, changedAt: r.changed_at },
    };
  }

  state(maxAgeMs = 0): KillSwitchState {
    const v = this.view;
    const age = v ? performance.now() - v.at : Infinity;
    if (age >= maxAgeMs) void this.read(false);
    // Security: a switch that was never read, or not for staleMs, is engaged: fail closed.
    if (!v || age > this.staleMs)
      return {
        engaged: true,
        reason: v
          ? `the kill switch could not be read from the PostgreSQL store for ${Math.round(age / 1000)} s (fail closed)`
          : 'the kill switch has not been read from the PostgreSQL store yet (fail closed)',
        actor: 'system',
        changedAt: 0,
      };
    return v.state;
  }

  /**
   * Engages or releases the switch: an operation of the caller's unit, which appends the `killswitch.*` record
   * (guard/operator.ts setKillSwitch). Once the unit has committed, this instance's view holds the change and the row
   * is re-read; every other replica is woken by the row's NOTIFY. A unit that rolls back changes nothing here.
   */
  async set(tx: Tx, engaged: boolean, reason: string, actor: string): Promise<KillSwitchState> {
    const state: KillSwitchState = { engaged, reason, actor, changedAt: (this.o.now ?? Date.now)() };
    const rows = await txOf(tx)`UPDATE killswitch SET engaged = ${engaged ? 1 : 0}, reason = ${reason},
      actor = ${actor}, changed_at = ${state.changedAt} WHERE id = 1 RETURNING 1`;
    if (!rows.length) throw new Error('killswitch row missing: the PostgreSQL store was not migrated');
    afterCommit(tx, () => {
      this.epoch++;
      this.view = { at: performance.now(), state };
      return this.refresh();
    });
    return state;
  }
}
