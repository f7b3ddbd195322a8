/**
 * The kill switch on PostgreSQL (KillSwitchPort; DESIGN §5, notes §7): the `killswitch` row is the truth; NOTIFY
 * on channel `itguard_killswitch` (the migration's trigger, sent on commit, never replayed) only wakes replicas up.
 * `state()` must answer synchronously (the execute step reads it right before the effect), so it returns a view
 * kept fresh in the background:
 *  - re-read on LISTEN's connect and every reconnect (postgres.js `onlisten`), and on every notification;
 *  - re-read (in the background) when a caller finds the view older than its `maxAgeMs`, so at most every
 *    `maxAgeMs` otherwise;
 *  - fail closed: before the first successful read, and when the last one is older than `staleMs` (the store is
 *    unreachable), the switch reads as engaged.
 * `maxAgeMs` 0 ("read now") cannot block here: it answers from the view and starts a re-read.
 */
import type { KillSwitchPort } from '../ports/index.js';
import type { AuditEvent } from '../sqlite/audit-store.js';
import type { KillSwitchState } from '../sqlite/killswitch-store.js';
import { UnitOfWork } from '../unit.js';
import type { PgStore } from './connect.js';
import { txOf, type PgUnitRunner } from './runner.js';

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
}

export class PgKillSwitch implements KillSwitchPort {
  private view: { at: number; state: KillSwitchState } | undefined;
  private reading: Promise<void> | undefined;
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

  /** Reads the row now (one read at a time; `rethrow` for start()). */
  refresh(rethrow = false): Promise<void> {
    this.reading ??= (async () => {
      try {
        const [r] = await this.pg.sql<Row[]>`SELECT engaged, reason, actor, changed_at FROM killswitch WHERE id = 1`;
        if (!r) throw new Error('killswitch row missing: the PostgreSQL store was not migrated');
        this.view = {
          at: performance.now(),
          state: { engaged: r.engaged === 1, reason: r.reason, actor: r.actor, changedAt: r.changed_at },
        };
        this.reads++;
      } finally {
        this.reading = undefined;
      }
    })();
    return rethrow ? this.reading : this.reading.catch(() => undefined);
  }

  state(maxAgeMs = 0): KillSwitchState {
    const v = this.view;
    const age = v ? performance.now() - v.at : Infinity;
    if (age >= maxAgeMs) void this.refresh();
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

  /** Engages or releases the switch and audits it in one unit; every replica is woken by the row's NOTIFY. */
  async set(runner: PgUnitRunner, engaged: boolean, reason: string, actor: string, now = Date.now()) {
    const u = new UnitOfWork('single');
    u.strict = true;
    const p = u.add(async (tx) => {
      await txOf(tx)`UPDATE killswitch SET engaged = ${engaged ? 1 : 0}, reason = ${reason}, actor = ${actor},
        changed_at = ${now} WHERE id = 1`;
    });
    const events: AuditEvent[] = [
      { event: engaged ? 'killswitch.engaged' : 'killswitch.resumed', actor, ts: now, detail: { reason, at: now } },
    ];
    void runner.append(u, events);
    await runner.commit(u);
    await p;
    await this.refresh();
    return { engaged, reason, actor, changedAt: now };
  }
}
