/**
 * Renewed leases on PostgreSQL: how a replica holds the rows of the work it runs (idempotency records in flight,
 * approved requests it executes) without process ids, which mean nothing on another host.
 *
 * A hold starts at `min(the work's own lease, holdMs)` on the database's clock and is renewed every `holdMs / 3` while
 * this replica still runs the work, never past the work's own lease (counted from its start). So a replica that dies
 * stops renewing and its rows are orphans for any other replica within `holdMs`; a live one keeps them however long
 * its work runs (up to the work's own lease, after which another replica may take it over, as on SQLite).
 *
 * A renewal that fails (the store unreachable) is retried at the next tick; a replica cut off from the store for
 * longer than `holdMs` loses its holds, and a retry elsewhere recovers the work through the tool's `recover()`.
 */
export const DEFAULT_HOLD_MS = 15_000;

export class Holds {
  private readonly held = new Map<string, number>();
  private timer: NodeJS.Timeout | undefined;
  /** Renewals sent (tests). */
  renewals = 0;

  constructor(
    /** Extends the lease of the rows of `ids[k]` to the database's now + `ms[k]`. */
    private readonly renew: (ids: string[], ms: number[]) => Promise<void>,
    readonly holdMs: number = DEFAULT_HOLD_MS,
  ) {}

  /** The first lease of work whose own lease is `leaseMs`. */
  first(leaseMs: number): number {
    return Math.min(leaseMs, this.holdMs);
  }

  add(id: string, leaseMs: number): void {
    if (leaseMs > this.holdMs) this.held.set(id, Date.now() + leaseMs);
  }

  delete(id: string): void {
    this.held.delete(id);
  }

  start(): void {
    if (this.timer) return;
    this.timer = setInterval(() => void this.tick(), Math.max(50, Math.floor(this.holdMs / 3)));
    this.timer.unref();
  }

  stop(): void {
    clearInterval(this.timer);
    this.timer = undefined;
  }

  /** One renewal of every hold still within its work's own lease. */
  async tick(): Promise<void> {
    const now = Date.now();
    const ids: string[] = [];
    const ms: number[] = [];
    for (const [id, until] of this.held) {
      if (until <= now) this.held.delete(id);
      else {
        ids.push(id);
        // Never further than the work's own lease.
        ms.push(Math.min(this.holdMs, until - now));
      }
    }
    if (!ids.length) return;
    this.renewals++;
    await this.renew(ids, ms).catch(() => undefined);
  }
}
