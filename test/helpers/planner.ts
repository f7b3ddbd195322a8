/**
 * Scripted planners over real transports: spawned `serve --stdio` processes and Streamable HTTP sessions against
 * spawned `serve --http` processes, all on one database file, plus read-only looks at that file.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StdioClientTransport } from '@modelcontextprotocol/sdk/client/stdio.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import type { CallToolResult } from '@modelcontextprotocol/sdk/types.js';
import { openApp } from '../../src/app.js';
import { parsePolicy } from '../../src/policy/load.js';
import { demoPolicy, type PolicyBuilder } from './policy-builder.js';
import { CLI } from './cli.js';
import { silent } from './harness.js';

export type Call = (name: string, args?: Record<string, unknown>) => Promise<CallToolResult>;
export interface Planner {
  client: Client;
  call: Call;
  close: () => Promise<void>;
}

export interface ErrorMeta {
  code: string;
  retryable: boolean;
  trace_id: string;
  rule?: string;
  level?: string;
  clears_at?: string | null;
  budget?: string;
  used?: number;
  limit?: number;
  resets_at?: string;
  request_id?: string;
  [k: string]: unknown;
}
/** What these helpers read of a result: the same on the v1 and the v2 SDK's CallToolResult. */
type Result = Pick<CallToolResult, '_meta'>;
export const errOf = (r: Result): ErrorMeta | undefined => r._meta?.['itguard/error'] as ErrorMeta | undefined;
export const codeOf = (r: Result): string | undefined => errOf(r)?.code;
/** The trace id every result carries: in the error meta for refusals, beside it for results. */
export const traceOf = (r: Result): string | undefined =>
  errOf(r)?.trace_id ?? (r._meta?.['itguard/trace_id'] as string | undefined);

/**
 * Writes `<dir>/<name>.yaml`: the policy a builder makes (the demo policy by default), or a whole policy text; and
 * checks it parses (a bad edit fails here, not in a server).
 */
export function writePolicy(dir: string, name: string, policy: PolicyBuilder | string = demoPolicy()): string {
  if (typeof policy !== 'string') return policy.write(dir, name);
  parsePolicy(policy, name);
  const file = join(dir, `${name}.yaml`);
  writeFileSync(file, policy);
  return file;
}

/**
 * Creates and seeds the database before any server starts (so concurrent starts do not race on a new file) and
 * makes bearer tokens for the named principals.
 */
export function seedDb(db: string, policyFile: string, tokensFor: string[] = []): Record<string, string> {
  const app = openApp({
    dbPath: db,
    policy: parsePolicy(readFileSync(policyFile, 'utf8'), policyFile),
    log: silent,
    executorPollMs: 3_600_000,
  });
  try {
    return Object.fromEntries(tokensFor.map((p) => [p, app.sqlite.tokens.create(p, 'test', 'scenario token').token]));
  } finally {
    app.close();
  }
}
export async function stdioPlanner(
  db: string,
  policy: string,
  env: Record<string, string> = {},
): Promise<Planner & { pid: number }> {
  const transport = new StdioClientTransport({
    command: process.execPath,
    args: [CLI, 'serve', '--stdio', '--db', db, '--policy', policy],
    env: { ...(process.env as Record<string, string>), ITGUARD_LOG_LEVEL: 'warn', ...env },
    stderr: 'ignore',
  });
  const client = new Client({ name: 'scripted-planner', version: '1' });
  await client.connect(transport);
  const call: Call = (name, args = {}) => client.callTool({ name, arguments: args }) as Promise<CallToolResult>;
  return { client, call, pid: transport.pid!, close: () => client.close() };
}

/** A fresh Streamable HTTP session (a new MCP session each time) with a bearer token. */
export async function httpPlanner(url: string, token: string): Promise<Planner> {
  const client = new Client({ name: 'scripted-planner', version: '1' });
  const transport = new StreamableHTTPClientTransport(new URL(url), {
    requestInit: { headers: { Authorization: `Bearer ${token}` } },
  });
  await client.connect(transport);
  const call: Call = (name, args = {}) => client.callTool({ name, arguments: args }) as Promise<CallToolResult>;
  return {
    client,
    call,
    close: async () => {
      await transport.terminateSession().catch(() => undefined);
      await client.close();
    },
  };
}

/** One fresh session, one call, session closed: what a client that opens a session per call does. */
export async function oneShot(
  url: string,
  token: string,
  name: string,
  args: Record<string, unknown>,
): Promise<CallToolResult> {
  const p = await httpPlanner(url, token);
  try {
    return await p.call(name, args);
  } finally {
    await p.close();
  }
}

/** A read-only look at the database file (WAL: sees what the servers committed). */
export function peek<T>(db: string, f: (d: Database.Database) => T): T {
  const d = new Database(db, { readonly: true, fileMustExist: true });
  try {
    d.pragma('busy_timeout = 5000');
    return f(d);
  } finally {
    d.close();
  }
}
export const count = (db: string, sql: string, ...params: unknown[]): number =>
  peek(db, (d) => (d.prepare(sql).get(...params) as { n: number }).n);

/** A write on the database file from outside itguard: what an admin or another system does to the directory. */
export function poke(db: string, sql: string, ...params: unknown[]): number {
  const d = new Database(db, { fileMustExist: true });
  try {
    d.pragma('busy_timeout = 5000');
    return d.prepare(sql).run(...params).changes;
  } finally {
    d.close();
  }
}

/** Polls until `f` returns a value (not undefined), or fails after `ms`: every wait in these tests is bounded. */
export async function until<T>(
  what: string,
  ms: number,
  f: () => T | undefined | Promise<T | undefined>,
  everyMs = 50,
): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = await f();
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, everyMs));
  }
}

/** The end of the current UTC hour (the demo policy's timezone): where an hourly window ends. */
export const hourEnd = (at = Date.now()): string => new Date((Math.floor(at / 3600_000) + 1) * 3600_000).toISOString();

/** For `until`: true once no process with this pid exists (a killed server has been reaped). */
export const gone = (pid: number): true | undefined => {
  try {
    process.kill(pid, 0);
    return undefined;
  } catch {
    return true;
  }
};
