/** Prometheus metrics for /metrics: calls by tool and outcome, refusals by code, latency, alarms. */
import { Counter, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

export interface Metrics {
  registry: Registry;
  calls: Counter<'tool' | 'outcome' | 'code'>;
  latency: Histogram<'tool'>;
  alarms: Counter<'kind' | 'rule'>;
}

export function createMetrics(defaults = false): Metrics {
  const registry = new Registry();
  if (defaults) collectDefaultMetrics({ register: registry, prefix: 'itguard_' });
  return {
    registry,
    calls: new Counter({ name: 'itguard_tool_calls_total', help: 'Tool calls by tool, outcome (ok|refused|error) and code', labelNames: ['tool', 'outcome', 'code'], registers: [registry] }),
    latency: new Histogram({
      name: 'itguard_tool_call_seconds',
      help: 'Tool call latency through the whole pipeline',
      labelNames: ['tool'],
      buckets: [0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 30],
      registers: [registry],
    }),
    alarms: new Counter({ name: 'itguard_alarms_total', help: 'Alarms raised (cap alarm_at crossed, loop breaker, lockouts)', labelNames: ['kind', 'rule'], registers: [registry] }),
  };
}
