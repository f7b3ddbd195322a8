/** /metrics (Prometheus): call counters and the open/tripped task gauges, which never carry a task id as a label. */
import { afterAll, beforeAll, expect, it } from 'vitest';
import type { SqliteApp as App } from '../../src/app.js';
import { startHttp, type RunningHttp } from '../../src/http/app.js';
import { createPromMetrics } from '../../src/metrics.js';
import { connect, testApp } from '../helpers/harness.js';
import { demoPolicy } from '../helpers/policy-builder.js';

let app: App;
let http: RunningHttp;
beforeAll(async () => {
  app = testApp({
    metrics: await createPromMetrics(false),
    policy: demoPolicy().task({ max_identical_calls: 1 }).parse(),
  });
  http = await startHttp(app, { host: '127.0.0.1', port: 0 });
});
afterAll(async () => {
  await http.close();
  app.close();
});

const scrape = async () => (await fetch(`${http.url}/metrics`)).text();
const gauge = (text: string, name: string) => Number(new RegExp(`^${name} (\\d+)$`, 'm').exec(text)?.[1]);

it('counts open and tripped tasks across every principal, without task ids as labels', async () => {
  expect(gauge(await scrape(), 'itguard_tasks_open')).toBe(0);
  const a = await connect(app);
  const b = await connect(app);
  await a.call('kb_search', { query: 'vpn' });
  await b.call('kb_search', { query: 'vpn' });
  await b.call('kb_search', { query: 'vpn' }); // the second identical call trips task b (max_identical_calls 1)
  const text = await scrape();
  expect(gauge(text, 'itguard_tasks_open')).toBe(2);
  expect(gauge(text, 'itguard_tasks_tripped')).toBe(1);
  expect(text).toMatch(/itguard_tool_calls_total\{tool="kb_search",outcome="ok",code=""\} 2/);
  expect(text).not.toMatch(/session:/);
});
