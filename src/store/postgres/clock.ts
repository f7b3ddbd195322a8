/**
 * The database's clock, read locally (DESIGN §5: windows on the database's clock). Every replica's calls are timed
 * with `Date.now()` corrected by this replica's measured offset to PostgreSQL's clock (`itguard_now_ms()`), so the
 * hour and day windows of caps and budgets, task idle times and breaker hours begin and end at the same instant on
 * every replica whatever their own clocks say, without a round trip per call. The offset is taken from the sample
 * with the shortest round trip (its error is at most half that round trip) and refreshed every 30 s, so a replica
 * whose clock is stepped or drifts follows within the refresh.
 */
import { type PgStore, toPgStoreError } from './connect.js';

const SAMPLES = 5;
const REFRESH_MS = 30_000;

export class PgClock {
  private offset = 0;
  private timer: NodeJS.Timeout | undefined;
  /** The round trip of the sample the offset came from (ms). */
  rttMs = 0;

  private constructor(private readonly pg: PgStore) {}

  /** Measures the offset now (refuses to start when the store cannot be read) and keeps it fresh. */
  static async start(pg: PgStore): Promise<PgClock> {
    const c = new PgClock(pg);
    await c.measure();
    c.timer = setInterval(() => void c.measure().catch(() => undefined), REFRESH_MS);
    c.timer.unref();
    return c;
  }

  /** Milliseconds since the epoch by the database's clock. */
  readonly now = (): number => Date.now() + this.offset;

  stop(): void {
    clearInterval(this.timer);
  }

  private async measure(): Promise<void> {
    let best: { rtt: number; offset: number } | undefined;
    try {
      for (let i = 0; i < SAMPLES; i++) {
        const t0 = performance.now();
        const w0 = Date.now();
        const [r] = await this.pg.sql<{ now: number }[]>`SELECT itguard_now_ms() AS now`;
        const rtt = performance.now() - t0;
        const offset = r!.now - (w0 + rtt / 2);
        if (!best || rtt < best.rtt) best = { rtt, offset };
      }
    } catch (e) {
      throw toPgStoreError(this.pg.target, e);
    }
    this.offset = Math.round(best!.offset);
    this.rttMs = best!.rtt;
  }
}
