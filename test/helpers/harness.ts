/** Builds an app on a fresh database and real SDK clients connected to it over InMemoryTransport. */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { InMemoryTransport } from '@modelcontextprotocol/sdk/inMemory.js';
import type { CallToolResult } from '@modelcontextprotocol/sdk/types.js';
import pino from 'pino';
import { openApp, type SqliteApp as App, type AppOptions } from '../../src/app.js';
import { DEMO_POLICY_YAML } from '../../src/policy/demo.js';
import { parsePolicy } from '../../src/policy/load.js';
import { createServer, newSession } from '../../src/server.js';

export const silent = pino({ level: 'silent' });

export function tempDir(): { dir: string; cleanup: () => void } {
  const dir = mkdtempSync(join(tmpdir(), 'itguard-test-'));
  return { dir, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}

/** The demo policy with some top-level YAML appended/overridden by simple text edits. */
export function policyWith(edit: (yaml: string) => string = (y) => y) {
  return parsePolicy(edit(DEMO_POLICY_YAML), 'test policy');
}

export function testApp(opts: Partial<AppOptions> = {}): App {
  return openApp({ dbPath: ':memory:', policy: policyWith(), log: silent, ...opts });
}

export async function connect(app: App, principalName = 'helpdesk-agent', capabilities: Client['_capabilities'] = {}) {
  const principal = app.principal(principalName) ?? { name: principalName, scopes: [] };
  const session = newSession('memory', app.now());
  const server = createServer(app, { principal, session });
  const client = new Client({ name: 'test-client', version: '1.0.0' }, { capabilities });
  const [a, b] = InMemoryTransport.createLinkedPair();
  await Promise.all([server.connect(a), client.connect(b)]);
  const call = async (name: string, args: Record<string, unknown> = {}) =>
    (await client.callTool({ name, arguments: args })) as CallToolResult;
  return { client, server, session, call, close: () => client.close() };
}

export const textOf = (r: CallToolResult): string => r.content.map((c) => (c.type === 'text' ? c.text : '')).join('\n');
export const codeOf = (r: CallToolResult): string | undefined =>
  (r._meta?.['itguard/error'] as { code?: string } | undefined)?.code;
