/**
 * One server under test, in its own process (so the load generator and the server do not share a CPU-bound
 * event loop, and every run starts from a fresh heap). Started by throughput.mjs with
 *   node server-child.mjs <guarded|bare> <kb_search|ticket_create> <db file>
 * It reports { url, token } over IPC once listening, and exits on the 'stop' message.
 *
 * guarded: itguard itself — openApp + startHttp, the demo data, the bench policy (durability strict).
 * bare:    the same tool handler (the tool definition's own `input` and `run`, over the same embedded backend on
 *          a database opened by itguard's openDb, so same WAL + synchronous FULL) registered on a bare SDK
 *          McpServer (v2, the SDK itguard runs on), served over NodeStreamableHTTPServerTransport with one
 *          stateful session per client, behind express.json like itguard. No auth, no guards: that difference is
 *          what the ratio measures.
 */
import { randomUUID } from 'node:crypto';
import express from 'express';
import { McpServer, isInitializeRequest } from '@modelcontextprotocol/server';
import { NodeStreamableHTTPServerTransport } from '@modelcontextprotocol/node';
import { z } from 'zod';
import { openApp } from '../../dist/app.js';
import { startHttp } from '../../dist/http/app.js';
import { openDb } from '../../dist/store/db.js';
import { seedDemo } from '../../dist/demo/seed.js';
import { EmbeddedKb } from '../../dist/tools/kb/embedded.js';
import { EmbeddedTickets } from '../../dist/tools/tickets/embedded.js';
import { EmbeddedDirectory } from '../../dist/tools/directory/embedded.js';
import { kbSearch } from '../../dist/tools/kb/tools.js';
import { ticketCreate } from '../../dist/tools/tickets/tools.js';
import { benchPolicy } from './policy.mjs';

const [mode, toolName, dbPath] = process.argv.slice(2);
const TOOLS = { kb_search: kbSearch, ticket_create: ticketCreate };

async function startGuarded() {
  const app = openApp({ dbPath, policy: benchPolicy() });
  const running = await startHttp(app, { host: '127.0.0.1', port: 0 });
  const { token } = app.tokens.create('helpdesk-agent', 'bench', 'benchmark');
  return { url: `${running.url}/mcp`, token, close: async () => (await running.close(), app.close()) };
}

async function startBare() {
  const tool = TOOLS[toolName];
  const db = openDb(dbPath, { durability: 'strict' });
  seedDemo(db);
  const t = benchPolicy().backends.tickets;
  const backends = {
    kb: new EmbeddedKb(db),
    tickets: new EmbeddedTickets(db),
    directory: new EmbeddedDirectory(db),
    projects: { home: t.project, allowed: t.allowedProjects },
  };
  const principal = { name: 'helpdesk-agent', scopes: [] };

  const newServer = () => {
    const server = new McpServer({ name: 'bare', version: '0.0.0' });
    server.registerTool(
      tool.name,
      {
        title: tool.title,
        description: tool.description,
        inputSchema: z.object(tool.input),
        annotations: tool.annotations,
      },
      async (args, ctx) => {
        const traceId = randomUUID();
        const out = await tool.run(args, {
          backends,
          principal,
          traceId,
          idempotencyKey: undefined,
          requestId: traceId,
          resolved: {},
          signal: ctx.mcpReq.signal,
          guardView: () => ({}),
        });
        return { content: [{ type: 'text', text: out.text }], ...(out.data ? { structuredContent: out.data } : {}) };
      },
    );
    return server;
  };

  const sessions = new Map();
  const web = express();
  web.use(express.json({ limit: '1mb' }));
  web.post('/mcp', async (req, res) => {
    const sid = req.headers['mcp-session-id'];
    if (typeof sid === 'string') {
      const transport = sessions.get(sid);
      if (!transport)
        return void res
          .status(404)
          .json({ jsonrpc: '2.0', error: { code: -32000, message: 'Session not found' }, id: null });
      await transport.handleRequest(req, res, req.body);
      return;
    }
    if (!isInitializeRequest(req.body))
      return void res.status(400).json({ jsonrpc: '2.0', error: { code: -32000, message: 'No session' }, id: null });
    const transport = new NodeStreamableHTTPServerTransport({
      sessionIdGenerator: () => randomUUID(),
      onsessioninitialized: (id) => sessions.set(id, transport),
    });
    await newServer().connect(transport);
    await transport.handleRequest(req, res, req.body);
  });
  const http = await new Promise((resolve, reject) => {
    const s = web.listen(0, '127.0.0.1', (e) => (e ? reject(e) : resolve(s)));
  });
  return {
    url: `http://127.0.0.1:${http.address().port}/mcp`,
    token: undefined,
    close: async () => {
      await Promise.all([...sessions.values()].map((tr) => tr.close().catch(() => undefined)));
      http.closeAllConnections();
      await new Promise((r) => http.close(() => r()));
      db.close();
    },
  };
}

if (!TOOLS[toolName] || !['guarded', 'bare'].includes(mode) || !dbPath) {
  process.stderr.write('usage: server-child.mjs <guarded|bare> <kb_search|ticket_create> <db file>\n');
  process.exit(2);
}
const server = mode === 'guarded' ? await startGuarded() : await startBare();
process.send({ type: 'ready', url: server.url, token: server.token });
process.on('message', async (m) => {
  // CPU time this process has used so far (user + system, µs): the orchestrator samples it at the measured window's edges.
  if (m?.type === 'cpu') return void process.send({ type: 'cpu', usage: process.cpuUsage(), at: performance.now() });
  if (m?.type !== 'stop') return;
  await server.close().catch(() => undefined);
  process.exit(0);
});
process.on('disconnect', () => process.exit(0));
