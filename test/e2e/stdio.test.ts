import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StdioClientTransport } from '@modelcontextprotocol/sdk/client/stdio.js';
import type { CallToolResult } from '@modelcontextprotocol/sdk/types.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CLI } from '../helpers/cli.js';
import { tempDir } from '../helpers/harness.js';

let tmp: ReturnType<typeof tempDir>;
beforeAll(() => {
  tmp = tempDir();
});
afterAll(() => tmp.cleanup());

describe('serve --stdio', () => {
  it('serves tools to an SDK client over stdio as the stdio principal', async () => {
    const transport = new StdioClientTransport({
      command: process.execPath,
      args: [CLI, 'serve', '--stdio', '--db', join(tmp.dir, 'a.db')],
      stderr: 'pipe',
    });
    const client = new Client({ name: 'e2e-stdio', version: '1.0.0' });
    await client.connect(transport);
    const names = (await client.listTools()).tools.map((t) => t.name);
    expect(names).toContain('ticket_create');
    const r = (await client.callTool({
      name: 'kb_search',
      arguments: { query: 'vpn keeps disconnecting' },
    })) as CallToolResult;
    expect((r.structuredContent as { results: { title: string }[] }).results[0]!.title).toMatch(/VPN/i);
    const s = (await client.callTool({ name: 'guard_status', arguments: {} })) as CallToolResult;
    expect((s.structuredContent as { principal: string }).principal).toBe('helpdesk-agent');
    await client.close();
  });

  it('writes nothing but JSON-RPC frames to stdout, logs to stderr', async () => {
    const proc = spawn(process.execPath, [CLI, 'serve', '--stdio', '--db', join(tmp.dir, 'b.db')], {
      stdio: ['pipe', 'pipe', 'pipe'],
      env: { ...process.env, ITGUARD_LOG_LEVEL: 'debug' },
    });
    let out = '';
    let err = '';
    proc.stdout.on('data', (d: Buffer) => (out += d.toString()));
    proc.stderr.on('data', (d: Buffer) => (err += d.toString()));
    const send = (m: object) => proc.stdin.write(`${JSON.stringify(m)}\n`);
    send({
      jsonrpc: '2.0',
      id: 1,
      method: 'initialize',
      params: { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: 'raw', version: '1' } },
    });
    send({ jsonrpc: '2.0', method: 'notifications/initialized' });
    send({ jsonrpc: '2.0', id: 2, method: 'tools/list', params: {} });
    send({
      jsonrpc: '2.0',
      id: 3,
      method: 'tools/call',
      params: { name: 'kb_search', arguments: { query: 'printer' } },
    });
    send({ jsonrpc: '2.0', id: 4, method: 'tools/call', params: { name: 'kb_search', arguments: { query: 42 } } });
    proc.stdin.write('this is not json\n');
    send({ jsonrpc: '2.0', id: 5, method: 'tools/call', params: { name: 'guard_status', arguments: {} } });
    await new Promise<void>((resolve, reject) => {
      const t = setTimeout(() => reject(new Error(`timeout; stdout:\n${out}\nstderr:\n${err}`)), 15_000);
      const check = () => {
        // Answers need not come in request order (a refusal's records can commit after a later call's answer).
        if (['"id":3', '"id":4', '"id":5'].every((id) => out.includes(id))) {
          clearTimeout(t);
          resolve();
        }
      };
      proc.stdout.on('data', check);
    });
    proc.stdin.end();
    await new Promise((r) => proc.once('exit', r));
    const lines = out.split('\n').filter(Boolean);
    for (const l of lines) expect(JSON.parse(l)).toMatchObject({ jsonrpc: '2.0' });
    const byId = new Map(
      lines.map((l) => JSON.parse(l) as { id?: number; result?: CallToolResult }).map((m) => [m.id, m]),
    );
    expect(byId.get(4)!.result!.isError).toBe(true);
    expect(JSON.stringify(byId.get(4))).toContain('query: expected string');
    expect(byId.get(5)!.result!.isError).toBeFalsy(); // the garbage line did not kill the server
    expect(err).toMatch(/serving MCP over stdio/);
  });
});
