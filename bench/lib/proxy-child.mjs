/**
 * The proxy peer's guard, in its own process: @civic/passthrough-mcp-server (a generic MCP guard proxy with a
 * hook chain) in front of the bare server of server-child.mjs, which runs in another process. Started by
 * throughput.mjs with
 *   node proxy-child.mjs <target url>
 * It serves Streamable HTTP on 127.0.0.1 (stateful sessions, one upstream client session per client session),
 * runs every request through one local hook, and forwards it to the target over the package's own Streamable HTTP
 * client transport. The hook is the smallest guard that still looks at a call: a tools/call for a tool not on an
 * allow-list is rejected, every other call continues unchanged. It reports { url } over IPC once listening, and
 * exits on the 'stop' message, like server-child.mjs.
 */
import { createServer } from 'node:net';
import { AbstractHook, createHttpPassthroughProxy } from '@civic/passthrough-mcp-server';

const [target] = process.argv.slice(2);
if (!target) {
  process.stderr.write('usage: proxy-child.mjs <target url>\n');
  process.exit(2);
}

const ALLOWED = new Set(['kb_search', 'ticket_create']);

class AllowListHook extends AbstractHook {
  get name() {
    return 'allow-list';
  }
  async processCallToolRequest(request) {
    if (!ALLOWED.has(request.params.name))
      return {
        resultType: 'respond',
        response: { content: [{ type: 'text', text: `tool ${request.params.name} is not allowed` }], isError: true },
      };
    return { resultType: 'continue', request };
  }
}

/** A free loopback port: the package listens on `config.port || 3000`, so port 0 (any) cannot be passed through. */
function freePort() {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

// The package logs every request at debug level through console.log; stdout is /dev/null here (throughput.mjs),
// as a deployment would ship it to a log sink, so that cost stays in the measurement as it is.
const port = await freePort();
const proxy = await createHttpPassthroughProxy({
  port,
  mcpPath: '/mcp',
  // The package appends mcpPath to the target's base URL.
  target: { transportType: 'httpStream', url: new URL(target).origin, mcpPath: new URL(target).pathname },
  hooks: [new AllowListHook()],
});
process.send({ type: 'ready', url: `http://127.0.0.1:${port}/mcp` });
process.on('message', async (m) => {
  if (m?.type === 'cpu') return void process.send({ type: 'cpu', usage: process.cpuUsage(), at: performance.now() });
  if (m?.type !== 'stop') return;
  await proxy.stop().catch(() => undefined);
  process.exit(0);
});
process.on('disconnect', () => process.exit(0));
