/**
 * Metrics the guards record: calls by tool and outcome (ok|refused|replay|error) and code, latency, alarms.
 * Served as Prometheus text at /metrics in HTTP mode (prom-client, loaded only there). In stdio mode nothing
 * scrapes them, so a no-op set keeps prom-client out of the desktop cold start.
 */
import type { Registry } from 'prom-client';

export interface Metrics {
  /** Absent when metrics are not exported (stdio). */
  registry: Registry | undefined;
  calls: { inc(labels: { tool: string; outcome: string; code: string }): void };
  latency: { observe(labels: { tool: string }, seconds: number): void };
  alarms: { inc(labels: { kind: string; rule: string }): void };
  /**
   * Gives the open/tripped task gauges their source (read from the store when scraped; no task id is ever a label,
   * so the series count stays two whatever the number of tasks).
   */
  bindTasks(read: () => { open: number; tripped: number } | Promise<{ open: number; tripped: number }>): void;
}

export const noopMetrics = (): Metrics => ({
  registry: undefined,
  calls: { inc() {} },
  latency: { observe() {} },
  alarms: { inc() {} },
  bindTasks() {},
});

export async function createPromMetrics(defaults = true): Promise<Metrics> {
  const mod = await import('prom-client');
  // A CommonJS package: in the code-split bundle (scripts/postbuild.mjs) its exports arrive as `default` only.
  const { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } = mod.default ?? mod;
  const registry = new Registry();
  if (defaults) collectDefaultMetrics({ register: registry, prefix: 'itguard_' });
  let readTasks: (() => { open: number; tripped: number } | Promise<{ open: number; tripped: number }>) | undefined;
  // One read per scrape serves both gauges: prom-client may collect them concurrently, so they share the read in
  // flight (or made within the last 100 ms).
  let last: { at: number; read: Promise<{ open: number; tripped: number }> } | undefined;
  const tasksGauge = (name: string, help: string, pick: 'open' | 'tripped') =>
    new Gauge({
      name,
      help,
      registers: [registry],
      async collect() {
        if (!readTasks) return;
        const now = Date.now();
        if (!last || now - last.at > 100) last = { at: now, read: Promise.resolve(readTasks()) };
        this.set((await last.read)[pick]);
      },
    });
  tasksGauge('itguard_tasks_open', 'Open tasks (a call within task.idle_minutes), every principal', 'open');
  tasksGauge('itguard_tasks_tripped', 'Open tasks whose own loop breaker tripped', 'tripped');
  return {
    bindTasks(read) {
      readTasks = read;
    },
    registry,
    calls: new Counter({
      name: 'itguard_tool_calls_total',
      help: 'Tool calls by tool, outcome (ok|refused|replay|error) and code',
      labelNames: ['tool', 'outcome', 'code'],
      registers: [registry],
    }),
    latency: new Histogram({
      name: 'itguard_tool_call_seconds',
      help: 'Tool call latency through the whole pipeline',
      labelNames: ['tool'],
      buckets: [0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 30],
      registers: [registry],
    }),
    alarms: new Counter({
      name: 'itguard_alarms_total',
      help: 'Alarms raised (cap alarm_at crossed, loop breaker, MFA lockouts)',
      labelNames: ['kind', 'rule'],
      registers: [registry],
    }),
  };
}
