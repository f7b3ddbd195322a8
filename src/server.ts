/**
 * createServer: one MCP server per session (stdio: one per process; HTTP: one per Streamable HTTP session),
 * bound to the principal that opened it. tools/list shows only the tools that principal may call; every
 * tools/call goes through the composed guard pipeline. No I/O at import.
 */
import { Server } from '@modelcontextprotocol/sdk/server/index.js';
import {
  CallToolRequestSchema,
  ListToolsRequestSchema,
  type CallToolResult,
  type Tool,
} from '@modelcontextprotocol/sdk/types.js';
import { nanoid } from 'nanoid';
import { z } from 'zod';
import type { App } from './app.js';
import { unknownTool, unknownToolPolicy, visibleTools } from './guard/scope.js';
import {
  newCallState,
  type AnyTool,
  type Call,
  type ClientGate,
  type McpExtra,
  type Principal,
  type SessionState,
} from './guard/types.js';
import { inputSchema } from './guard/validate.js';

export const SERVER_INFO = { name: 'itguard', version: '0.1.0' };

const listings = new WeakMap<AnyTool, Tool>();
function listing(tool: AnyTool): Tool {
  let t = listings.get(tool);
  if (!t) {
    const { $schema: _s, ...schema } = z.toJSONSchema(inputSchema(tool), { io: 'input' }) as Record<string, unknown>;
    const output = tool.output && (z.toJSONSchema(z.object(tool.output), { io: 'output' }) as Record<string, unknown>);
    if (output) delete output.$schema;
    t = {
      name: tool.name,
      title: tool.title,
      description: tool.description,
      inputSchema: schema as Tool['inputSchema'],
      ...(output ? { outputSchema: output as Tool['outputSchema'] } : {}),
      annotations: { title: tool.title, ...tool.annotations },
    };
    listings.set(tool, t);
  }
  return t;
}

export function newSession(transport: SessionState['transport'], now: number, id: string = nanoid()): SessionState {
  return {
    id,
    transport,
    startedAt: now,
    calls: 0,
    resultBytes: 0,
    identical: new Map(),
    consecutiveFailures: 0,
    tripped: undefined,
  };
}

/** What the human gates may ask of this client: elicitation (form, url) tied to this request, and progress. */
function clientGate(server: Server, extra: McpExtra): ClientGate {
  const caps = server.getClientCapabilities()?.elicitation;
  const progressToken = extra._meta?.progressToken;
  return {
    form: !!caps?.form,
    url: !!caps?.url,
    elicit: (params, signal, timeoutMs) =>
      server.elicitInput(params, { relatedRequestId: extra.requestId, signal, timeout: timeoutMs }),
    async progress(progress, total, message) {
      if (progressToken === undefined) return;
      await extra
        .sendNotification({ method: 'notifications/progress', params: { progressToken, progress, total, message } })
        .catch(() => undefined);
    },
  };
}

export interface ServerOptions {
  principal: Principal;
  session: SessionState;
}

export function createServer(app: App, opts: ServerOptions): Server {
  const server = new Server(SERVER_INFO, {
    capabilities: { tools: { listChanged: false }, logging: {} },
    instructions:
      'itguard: IT-support tools behind guardrails. Refusals come back as tool results with a code, a next step and retryable; follow them. Call guard_status to see your own limits.',
  });
  const { principal, session } = opts;

  server.setRequestHandler(ListToolsRequestSchema, async () => ({
    tools: visibleTools(app.tools, principal, app.policy).map(listing),
  }));

  server.setRequestHandler(CallToolRequestSchema, async (req, extra): Promise<CallToolResult> => {
    const known = app.tools.find((t) => t.name === req.params.name);
    // An unknown tool goes through the pipeline too: it spends budget and counts as a failure (scope refuses it).
    const tool = known ?? unknownTool(req.params.name);
    const call: Call = {
      tool,
      toolPolicy: known ? app.policy.tools[known.name] : unknownToolPolicy(app.policy),
      rawArgs: req.params.arguments ?? {},
      args: undefined as unknown as Record<string, unknown>,
      principal,
      session,
      traceId: nanoid(16),
      signal: AbortSignal.any([extra.signal, app.killSignal()]),
      startedAt: app.now(),
      idempotencyKey: undefined,
      state: newCallState(),
      client: clientGate(server, extra),
      mcp: extra,
    };
    return app.pipeline(call);
  });

  return server;
}
