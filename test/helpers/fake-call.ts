/** A Call for guard unit tests: guard(next)(call) without a server. */
import type { CallToolResult } from '@modelcontextprotocol/sdk/types.js';
import { vi } from 'vitest';
import type { SqliteApp as App } from '../../src/app.js';
import { newCallState, type Call } from '../../src/guard/types.js';
import type { AnyTool } from '../../src/core/tool.js';
import { newSession } from '../../src/server.js';

export function fakeCall(
  app: App,
  toolName: string,
  rawArgs: Record<string, unknown>,
  principal = 'helpdesk-agent',
  over: Partial<Call> = {},
): Call {
  const tool = app.tools.find((t) => t.name === toolName) as AnyTool;
  const session = over.session ?? newSession('memory', app.now());
  return {
    tool,
    toolPolicy: app.policy.tools[tool.name],
    rawArgs,
    args: rawArgs,
    principal: app.principal(principal) ?? { name: principal, scopes: [] },
    session,
    task: { source: 'session', id: `session:${session?.id ?? 'none'}` },
    traceId: 'trace-test',
    signal: new AbortController().signal,
    startedAt: app.now(),
    idempotencyKey: undefined,
    state: newCallState(),
    client: undefined,
    mcp: undefined,
    ...over,
  };
}

export const okResult: CallToolResult = { content: [{ type: 'text', text: 'ok' }] };
export const nextSpy = () => vi.fn(async (_c: Call) => okResult);
