/**
 * One server under test, in its own process (so the load generator and the server do not share a CPU-bound
 * event loop, and every run starts from a fresh heap). Started by throughput.mjs with
 *   node server-child.mjs <guarded|bare|pg> <kb_search|ticket_create> <db file>
 * It reports { url, token } over IPC once listening, and exits on the 'stop' message.
 *
 * guarded: itguard itself — openApp + startHttp, the demo data, the bench policy (durability strict).
 * pg:      itguard as a replica on PostgreSQL — startApp + startHttp with the bench policy's
 *          `store: { kind: postgres, url_env: ITGUARD_PG_URL }` (the URL in this process's environment; the db file
 *          argument is not used). Several of these on one database are replicas behind a balancer.
 * bare:    the same tool handler (the tool definition's own `input` and `run`, over the same embedded backend on
 *          a database opened by itguard's openDb, so same WAL + synchronous FULL) registered on a bare SDK
 *          McpServer (v2, the SDK itguard runs on), served over the SDK's NodeStreamableHTTPServerTransport
 *          (@modelcontextprotocol/node) with one stateful session per client, on plain node:http: no express, the
 *          JSON body read and parsed here (1 MB limit). No auth, no guards: that difference is what the ratio
 *          measures. It is also the target behind the proxy peer (proxy-child.mjs).
 */
import { randomUUID } from 'node:crypto';
import { createServer } from 'node:http';
import { McpServer, isInitializeRequest } from '@modelcontextprotocol/server';
import { NodeStreamableHTTPServerTransport } from '@modelcontextprotocol/node';
import { z } from 'zod';
import { openApp, startApp } from '../../dist/app.js';
import { createToken } from '../../dist/guard/operator.js';
import { startHttp } from '../../dist/http/app.js';
import { openDb } from '../../dist/store/sqlite/db.js';
import { seedDemo } from '../../dist/demo/seed.js';
import { EmbeddedKb } from '../../dist/tools/kb/embedded.js';
import { EmbeddedTickets } from '../../dist/tools/tickets/embedded.js';
import { EmbeddedDirectory } from '../../dist/tools/directory/embedded.js';
import { kbSearch } from '../../dist/tools/kb/tools.js';
import { ticketCreate } from '../../dist/tools/tickets/tools.js';
import { benchPolicy } from './policy.mjs';

const [mode, toolName, dbPath] = process.argv.slice(2);
const TOOLS = { kb_search: kbSearch, ticket_create: ticketCreate };
const BODY_LIMIT = 1024 * 1024;

async function startGuarded() {
  const app = openApp({ dbPath, policy: benchPolicy() });
  const running = await startHttp(app, { host: '127.0.0.1', port: 0 });
  const { token } = await createToken(app, 'helpdesk-agent', 'bench', 'benchmark');
  // Wall time spent inside the unit committer's group commits (waiting for the write lock, the batch's statements,
  // the commit and its fsync): the committer's flush runs all of it synchronously. Wrapped here, for the scale-out
  // part, so the store's code is measured as it ships.
  let commitMs = 0;
  const flush = app.audit.flush;
  if (typeof flush === 'function')
    app.audit.flush = function timedFlush() {
      const t = performance.now();
      try {
        return flush.call(this);
      } finally {
        commitMs += performance.now() - t;
      }
    };
  return {
    url: `${running.url}/mcp`,
    token,
    // The transactions this process's unit committer has committed (group commits): the scale-out part reads them.
    commits: () => ({ n: app.audit.commits, ms: commitMs }),
    close: async () => (await running.close(), app.close()),
  };
}

/**
 * A replica on PostgreSQL. Its unit runner (PgUnitRunner) commits each unit in its own transaction; the wall time
 * spent in those commits (BEGIN to COMMIT's answer, the WAL flush included) is timed here around `commit`, as the
 * SQLite committer's flush is above.
 */
async function startPgReplica() {
  const app = await startApp({ dbPath, policy: benchPolicy({ store: 'postgres' }) });
  const running = await startHttp(app, { host: '127.0.0.1', port: 0 });
  const { token } = await createToken(app, 'helpdesk-agent', 'bench', 'benchmark');
  let commitMs = 0;
  const commit = app.audit.commit;
  app.audit.commit = async function timedCommit(unit) {
    const t = performance.now();
    try {
      return await commit.call(this, unit);
    } finally {
      commitMs += performance.now() - t;
    }
  };
  return {
    url: `${running.url}/mcp`,
    token,
    commits: () => ({ n: app.audit.commits, ms: commitMs, retries: app.audit.retries }),
    close: async () => (await running.close(), await app.close()),
  };
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
  const reply = (res, status, message) => {
    const body = JSON.stringify({ jsonrpc: '2.0', error: { code: -32000, message }, id: null });
    res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) });
    res.end(body);
  };
  const onRequest = async (req, res) => {
    if (req.url !== '/mcp' && !req.url.startsWith('/mcp?')) return reply(res, 404, 'Not found');
    const sid = req.headers['mcp-session-id'];
    if (req.method !== 'POST') {
      // GET (standalone SSE stream) and DELETE (session end) go to the session's transport as they are.
      const transport = typeof sid === 'string' ? sessions.get(sid) : undefined;
      if (!transport) return reply(res, typeof sid === 'string' ? 404 : 400, 'No session');
      return transport.handleRequest(req, res);
    }
    // The body, read and parsed here (what express.json did): at most 1 MB, like itguard's limit.
    const chunks = [];
    let size = 0;
    for await (const c of req) {
      size += c.length;
      if (size > BODY_LIMIT) return reply(res, 413, 'Request body too large');
      chunks.push(c);
    }
    let body;
    try {
      body = JSON.parse(Buffer.concat(chunks).toString('utf8'));
    } catch {
      return reply(res, 400, 'Parse error');
    }
    if (typeof sid === 'string') {
      const transport = sessions.get(sid);
      if (!transport) return reply(res, 404, 'Session not found');
      return transport.handleRequest(req, res, body);
    }
    if (!isInitializeRequest(body)) return reply(res, 400, 'No session');
    const transport = new NodeStreamableHTTPServerTransport({
      sessionIdGenerator: () => randomUUID(),
      onsessioninitialized: (id) => sessions.set(id, transport),
    });
    transport.onclose = () => transport.sessionId && sessions.delete(transport.sessionId);
    await newServer().connect(transport);
    await transport.handleRequest(req, res, body);
  };
  const http = createServer((req, res) =>
    onRequest(req, res).catch((e) => {
      if (!res.headersSent) reply(res, 500, String(e?.message ?? e));
      else res.destroy();
    }),
  );
  await new Promise((resolve, reject) => {
    http.once('error', reject);
    http.listen(0, '127.0.0.1', () => (http.off('error', reject), resolve()));
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

if (!TOOLS[toolName] || !['guarded', 'bare', 'pg'].includes(mode) || !dbPath) {
  process.stderr.write('usage: server-child.mjs <guarded|bare|pg> <kb_search|ticket_create> <db file>\n');
  process.exit(2);
}
const server = await { guarded: startGuarded, bare: startBare, pg: startPgReplica }[mode]();
process.send({ type: 'ready', url: server.url, token: server.token });
process.on('message', async (m) => {
  // CPU time this process has used so far (user + system, µs): the orchestrator samples it at the measured window's edges.
  // With it, for itguard, the commits of its unit committer so far and the wall time spent in them.
  if (m?.type === 'cpu')
    return void process.send({
      type: 'cpu',
      usage: process.cpuUsage(),
      at: performance.now(),
      commits: server.commits?.(),
    });
  if (m?.type !== 'stop') return;
  await server.close().catch(() => undefined);
  process.exit(0);
});
process.on('disconnect', () => process.exit(0));
