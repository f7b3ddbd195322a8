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
}

export const noopMetrics = (): Metrics => ({
  registry: undefined,
  calls: { inc() {} },
  latency: { observe() {} },
  alarms: { inc() {} },
});

export async function createPromMetrics(defaults = true): Promise<Metrics> {
  const mod = await import('prom-client');
  // A CommonJS package: in the code-split bundle (scripts/postbuild.mjs) its exports arrive as `default` only.
  const { Counter, Histogram, Registry, collectDefaultMetrics } = mod.default ?? mod;
  const registry = new Registry();
  if (defaults) collectDefaultMetrics({ register: registry, prefix: 'itguard_' });
  return {
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
