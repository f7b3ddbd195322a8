/**
 * createServer: the one MCP handler for both protocol eras, bound to a principal. tools/list shows only the tools
 * that principal may call (so it varies only with the authorization presented); every tools/call goes through the
 * composed guard pipeline. No I/O at import.
 *
 * One instance serves one 2025-11-25 session (stdio: the process's connection; HTTP: one Mcp-Session-Id; tests: one
 * in-memory pair) with that session's SessionState, or 2026-07-28 traffic (stdio: the connection; HTTP: one
 * request), which has no session. Each call's task (the unit of the per-task bounds) is identified here, from the
 * request's `_meta`, the `Itguard-Task` header, the session or stdio connection, or the OAuth user (guard/task.ts).
 *
 * Why the SDK's low-level Server and not McpServer: McpServer validates arguments and answers unknown tools itself,
 * before any handler runs, and lists every registered tool. itguard's pipeline must see every call first (an
 * unknown tool or invalid arguments spend budget and are refused as tool results with _meta, DESIGN §3), and
 * tools/list is filtered per principal. The low-level Server keeps both, and v2 gives it the same era handling
 * (serveStdio, createMcpHandler) and the same input_required seam for the later MRTR step.
 */
import {
  CLIENT_CAPABILITIES_META_KEY,
  Server,
  inputRequired,
  type CallToolResult,
  type ClientCapabilities,
  type InputRequiredResult,
  type InputResponses,
  type ServerContext,
  type Tool,
} from '@modelcontextprotocol/server';
import { nanoid } from 'nanoid';
import { newTraceId } from './trace-id.js';
import { z } from 'zod';
import type { App } from './app.js';
import { clientGate } from './client-gate.js';
import { unknownTool, unknownToolPolicy, visibleTools } from './guard/scope.js';
import { newCallState, type Call, type Era, type SessionState } from './guard/types.js';
import type { AnyTool, Principal } from './core/tool.js';
import { inputSchema } from './guard/validate.js';
import { errorCodeOf } from './core/errors.js';
import { linkedSignal } from './guard/signals.js';
import { identifyTask, TASK_META_KEY } from './guard/task.js';

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
  return { id, transport, startedAt: now };
}

/**
 * A 2025-11-25 instance serves one session and keeps its SessionState; a 2026-07-28 instance has none (the
 * protocol has no sessions). `era` is what the SDK's serving entry built the instance for (serveStdio,
 * createMcpHandler); a plain `connect` (HTTP sessions, tests) is 2025-11-25.
 */
/** A 2026-07-28 request's own capabilities (the `_meta` envelope); none declared → undefined. */
function requestCapabilities(ctx: ServerContext): ClientCapabilities | undefined {
  const envelope = ctx.mcpReq.envelope as Record<string, unknown> | undefined;
  return envelope?.[CLIENT_CAPABILITIES_META_KEY] as ClientCapabilities | undefined;
}

/** A retry's echoed requestState (raw: itguard verifies it itself, so a bad one is APPROVAL_DENIED) and answers. */
function resumeOf(ctx: ServerContext): Call['resume'] {
  const state = ctx.mcpReq.requestState<unknown>();
  return {
    state: typeof state === 'string' ? state : undefined,
    responses: ctx.mcpReq.inputResponses as InputResponses | undefined,
  };
}

/**
 * `connection` (2026-07-28 over stdio): the connection, which identifies a task like a session does. 2026-07-28
 * over HTTP has neither: a request is not a conversation.
 */
export type ServerOptions =
  | { principal: Principal; era?: 'legacy'; session: SessionState }
  | { principal: Principal; era: 'modern'; connection?: SessionState };

export function createServer(app: App, opts: ServerOptions): Server {
  const server = new Server(SERVER_INFO, {
    capabilities: { tools: { listChanged: false }, logging: {} },
    instructions:
      'itguard: IT-support tools behind guardrails. Refusals come back as tool results with a code, a next step and retryable; follow them. Call guard_status to see your own limits.',
    // The list depends on the token's principal only: cacheable by that client, never shared (the SDK's default,
    // written out because it is part of the contract).
    cacheHints: { 'tools/list': { ttlMs: 0, cacheScope: 'private' } },
  });
  const { principal } = opts;
  const era: Era = opts.era ?? 'legacy';
  const session = opts.era === 'modern' ? undefined : opts.session;
  const connection = opts.era === 'modern' ? opts.connection : opts.session;

  server.setRequestHandler('tools/list', async () => ({
    tools: visibleTools(app.tools, principal, app.policy).map(listing),
  }));

  server.setRequestHandler('tools/call', async (req, ctx): Promise<CallToolResult | InputRequiredResult> => {
    const known = app.tools.find((t) => t.name === req.params.name);
    // An unknown tool goes through the pipeline too: it spends budget and counts as a failure (scope refuses it).
    const tool = known ?? unknownTool(req.params.name);
    const linked = linkedSignal([ctx.mcpReq.signal, app.killSignal()]);
    const identified = identifyTask(app.policy.task.identify, {
      principal: principal.name,
      meta: (req.params._meta as Record<string, unknown> | undefined)?.[TASK_META_KEY],
      // HTTP: the request's Itguard-Task header, handed on by the bearer middleware (http/auth.ts) with the token.
      header: ctx.http?.authInfo?.extra?.task,
      connection: connection?.id,
      user: principal.onBehalfOfId,
    });
    const call: Call = {
      tool,
      toolPolicy: known ? app.policy.tools[known.name] : unknownToolPolicy(app.policy),
      rawArgs: req.params.arguments ?? {},
      args: undefined as unknown as Record<string, unknown>,
      principal,
      session,
      task: identified.task,
      taskInvalid: identified.invalid,
      traceId: newTraceId(),
      signal: linked.signal,
      startedAt: app.now(),
      idempotencyKey: undefined,
      state: newCallState(),
      // 2025-11-25: what the client declared at initialize; 2026-07-28: what this request declares (client-gate.ts).
      client: clientGate(era, era === 'legacy' ? server.getClientCapabilities() : requestCapabilities(ctx), ctx),
      resume: era === 'modern' ? resumeOf(ctx) : undefined,
      mcp: ctx,
    };
    let result: CallToolResult;
    try {
      result = await app.pipeline(call);
    } finally {
      linked.dispose();
    }
    // A gate asked in band (MRTR): the refusal it recorded becomes the input_required answer.
    if (call.state.inputRequired && errorCodeOf(result) === 'APPROVAL_PENDING')
      return inputRequired(call.state.inputRequired);
    return server.projectCallToolResult(result, known && listing(known).outputSchema);
  });

  return server;
}
