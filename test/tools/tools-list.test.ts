import { afterAll, beforeAll, expect, it } from 'vitest';
import type { App } from '../../src/app.js';
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
