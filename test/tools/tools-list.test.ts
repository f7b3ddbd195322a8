import { afterAll, beforeAll, expect, it } from 'vitest';
import type { SqliteApp as App } from '../../src/app.js';
import { connect, testApp } from '../helpers/harness.js';

let app: App;
beforeAll(() => {
  app = testApp();
});
afterAll(() => app.close());

it('tools/list (the model-facing surface) matches the snapshot file', async () => {
  const c = await connect(app);
  const { tools } = await c.client.listTools();
  await expect(JSON.stringify(tools, null, 2)).toMatchFileSnapshot('../__snapshots__/tools-list.json');
  for (const t of tools) {
    expect(t.annotations).toMatchObject({
      readOnlyHint: expect.any(Boolean),
      destructiveHint: expect.any(Boolean),
      idempotentHint: expect.any(Boolean),
      openWorldHint: expect.any(Boolean),
    });
  }
});

it('every tool declares an outputSchema, and its structuredContent validates against it (strict clients)', async () => {
  const c = await connect(app);
  // The SDK client keeps each listed tool's outputSchema and validates every result's structuredContent against it
  // (a result that does not match throws), as strict clients such as the Inspector's --strict do.
  const { tools } = await c.client.listTools();
  for (const t of tools) expect(t.outputSchema, t.name).toBeDefined();
  const reason = 'the user asked for it in chat';
  const calls: [string, Record<string, unknown>][] = [
    ['guard_status', {}],
    ['software_catalog', {}],
    ['kb_search', { query: 'vpn' }],
    ['ticket_create', { summary: 'Printer jams', requester: 'jdoe', reason }],
  ];
  for (const [name, args] of calls) {
    const r = await c.call(name, args);
    expect(r.structuredContent ?? r._meta?.['itguard/error'], name).toBeDefined();
  }
});
