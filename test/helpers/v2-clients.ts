/**
 * Clients on the v2 SDK (`@modelcontextprotocol/client`) in either protocol era: `legacy` negotiates 2025-11-25
 * with a plain initialize, `modern` pins 2026-07-28 (server/discover, a `_meta` envelope on every request).
 */
import { Client, StreamableHTTPClientTransport, type CallToolResult } from '@modelcontextprotocol/client';
import { StdioClientTransport } from '@modelcontextprotocol/client/stdio';
import type { ElicitRequestParams, ElicitResult } from '@modelcontextprotocol/client';
import { CLI } from './cli.js';

export type EraName = 'legacy' | 'modern';
export const ERAS: readonly EraName[] = ['legacy', 'modern'];

export interface V2Options {
  /** Elicitation modes the client declares (at initialize on 2025-11-25, on every request on 2026-07-28). */
  modes?: ('form' | 'url')[];
  /** Answers elicitation requests; default: decline. */
  respond?: (p: ElicitRequestParams) => ElicitResult | Promise<ElicitResult>;
}

export interface V2Planner {
  client: Client;
  era: EraName;
  /** Every elicitation request the server sent this client. */
  asked: ElicitRequestParams[];
  /** Progress notifications received, per call. */
  call(
    name: string,
    args?: Record<string, unknown>,
    onprogress?: (p: { progress: number }) => void,
  ): Promise<CallToolResult>;
  close(): Promise<void>;
}

function newClient(era: EraName, o: V2Options) {
  const modes = o.modes ?? [];
  const elicitation = modes.length ? Object.fromEntries(modes.map((m) => [m, {}])) : undefined;
  const client = new Client(
    { name: `eras-test-${era}`, version: '1' },
    {
      capabilities: elicitation ? { elicitation } : {},
      versionNegotiation: { mode: era === 'modern' ? { pin: '2026-07-28' } : 'legacy' },
    },
  );
  const asked: ElicitRequestParams[] = [];
  if (elicitation)
    client.setRequestHandler('elicitation/create', async (req) => {
      asked.push(req.params);
      return o.respond ? o.respond(req.params) : { action: 'decline' };
    });
  return { client, asked };
}

function planner(client: Client, era: EraName, asked: ElicitRequestParams[], close: () => Promise<void>): V2Planner {
  return {
    client,
    era,
    asked,
    call: (name, args = {}, onprogress) =>
      client.callTool(
        { name, arguments: args },
        onprogress ? { onprogress, resetTimeoutOnProgress: true } : undefined,
      ) as Promise<CallToolResult>,
    close,
  };
}

export async function v2Stdio(
  era: EraName,
  db: string,
  policy: string | undefined,
  o: V2Options = {},
  env: Record<string, string> = {},
): Promise<V2Planner> {
  const { client, asked } = newClient(era, o);
  const transport = new StdioClientTransport({
    command: process.execPath,
    args: [CLI, 'serve', '--stdio', '--db', db, ...(policy ? ['--policy', policy] : [])],
    env: { ...(process.env as Record<string, string>), ITGUARD_LOG_LEVEL: 'warn', ...env },
    stderr: 'ignore',
  });
  await client.connect(transport);
  return planner(client, era, asked, () => client.close());
}

export async function v2Http(era: EraName, url: string, token: string, o: V2Options = {}): Promise<V2Planner> {
  const { client, asked } = newClient(era, o);
  const transport = new StreamableHTTPClientTransport(new URL(url), {
    requestInit: { headers: { Authorization: `Bearer ${token}` } },
  });
  await client.connect(transport);
  return planner(client, era, asked, async () => {
    if (era === 'legacy') await transport.terminateSession().catch(() => undefined);
    await client.close();
  });
}

/** How a client names its task (DESIGN §3 step 4): in each request's `_meta`, or in the `Itguard-Task` header. */
export type TaskVia = 'meta' | 'header';

/**
 * A v2 HTTP client that names its task on every call, as an agent platform does: a fresh client per planner, so
 * a test can reconnect by making another one with the same task id.
 */
export async function v2Task(
  era: EraName,
  url: string,
  token: string,
  task: string,
  via: TaskVia,
  o: V2Options = {},
): Promise<V2Planner> {
  const { client, asked } = newClient(era, o);
  const headers: Record<string, string> = { Authorization: `Bearer ${token}` };
  if (via === 'header') headers['Itguard-Task'] = task;
  const transport = new StreamableHTTPClientTransport(new URL(url), { requestInit: { headers } });
  await client.connect(transport);
  const meta = via === 'meta' ? { 'io.itguard/task': task } : undefined;
  return {
    client,
    era,
    asked,
    call: (name, args = {}) =>
      client.callTool({ name, arguments: args, ...(meta ? { _meta: meta } : {}) }) as Promise<CallToolResult>,
    close: async () => {
      if (era === 'legacy') await transport.terminateSession().catch(() => undefined);
      await client.close();
    },
  };
}
