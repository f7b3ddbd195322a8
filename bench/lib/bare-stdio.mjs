/**
 * The cold-start baseline: a bare SDK v2 stdio server, the smallest real one. An McpServer from
 * @modelcontextprotocol/server (the SDK itguard runs on) with one tool (a zod input schema, as the SDK's examples
 * and itguard's tools have), connected to the SDK's own StdioServerTransport. No database, no policy, no logging.
 * Started by cold-start.mjs as `node bare-stdio.mjs`; it exits when stdin ends.
 */
import process from 'node:process';
import { McpServer } from '@modelcontextprotocol/server';
import { StdioServerTransport } from '@modelcontextprotocol/server/stdio';
import { z } from 'zod';

const server = new McpServer({ name: 'bare-stdio', version: '0.0.0' });
server.registerTool(
  'echo',
  {
    title: 'Echo',
    description: 'Returns its input.',
    inputSchema: z.object({ text: z.string().max(1000) }),
    annotations: { readOnlyHint: true },
  },
  async ({ text }) => ({ content: [{ type: 'text', text }] }),
);
await server.connect(new StdioServerTransport());
process.stdin.on('end', () => void server.close().finally(() => process.exit(0)));
