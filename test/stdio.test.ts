/** The line transport and its checks, in process: line splitting across chunks, the size limit, id recovery. */
import { PassThrough } from 'node:stream';
import type { JSONRPCMessage } from '@modelcontextprotocol/sdk/types.js';
import { describe, expect, it } from 'vitest';
import { checkMessage, recoverId, tidyError } from '../src/jsonrpc-check.js';
import { LineStdioTransport } from '../src/stdio.js';

function pair(maxLineBytes?: number) {
  const stdin = new PassThrough();
  const stdout = new PassThrough();
  const got: JSONRPCMessage[] = [];
  let out = '';
  stdout.on('data', (d: Buffer) => (out += d.toString()));
  const t = new LineStdioTransport({ stdin, stdout, ...(maxLineBytes ? { maxLineBytes } : {}) });
  t.onmessage = (m) => got.push(m);
  const replies = () =>
    out
      .split('\n')
      .filter(Boolean)
      .map((l) => JSON.parse(l) as { id: unknown; error: { code: number; message: string } });
  return { stdin, t, got, replies };
}
const tick = () => new Promise((r) => setImmediate(r));

describe('LineStdioTransport', () => {
  it('splits lines across and within chunks, with CRLF and blank lines', async () => {
    const { stdin, t, got } = pair();
    await t.start();
    const a = '{"jsonrpc":"2.0","id":1,"method":"ping"}';
    const b = '{"jsonrpc":"2.0","method":"notifications/initialized"}';
    stdin.write(a.slice(0, 10));
    stdin.write(`${a.slice(10)}\r\n\n${b}\n{"jsonrpc":"2.0","id":`);
    stdin.write('"x","method":"ping"}\n');
    await tick();
    expect(got).toEqual([JSON.parse(a), JSON.parse(b), { jsonrpc: '2.0', id: 'x', method: 'ping' }]);
  });

  it('discards a line over the limit fed in small chunks, answers with its id, then reads the next line', async () => {
    const { stdin, t, got, replies } = pair(1000);
    await t.start();
    stdin.write('{"jsonrpc":"2.0","id":42,"method":"tools/call","params":{"q":"');
    for (let i = 0; i < 50; i++) stdin.write('z'.repeat(100));
    stdin.write('"}}\n{"jsonrpc":"2.0","id":43,"method":"ping"}\n');
    await tick();
    expect(replies()).toEqual([
      { jsonrpc: '2.0', id: 42, error: { code: -32600, message: 'request too large (limit 1000 bytes)' } },
    ]);
    expect(got).toEqual([{ jsonrpc: '2.0', id: 43, method: 'ping' }]);
  });

  it('a line of exactly the limit is served', async () => {
    const { stdin, t, got } = pair(100);
    await t.start();
    const base = '{"jsonrpc":"2.0","id":1,"method":"ping","params":{"_meta":{"p":""}}}';
    const line = base.replace('"p":""', `"p":"${'a'.repeat(100 - base.length)}"`);
    expect(Buffer.byteLength(line)).toBe(100);
    stdin.write(`${line}\n`);
    await tick();
    expect(got).toHaveLength(1);
  });
});

describe('recoverId', () => {
  it('finds a top-level id, never one inside params, and never a number cut short', () => {
    expect(recoverId('{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"x":"')).toBe(7);
    expect(recoverId('{ "id" : "a\\"b", "method"')).toBe('a"b');
    expect(recoverId('{"method":"tools/call","params":{"id":5,"arguments":{"q":"')).toBeNull();
    expect(recoverId('{"method":"x","params":{"q":"\\"id\\":3"},"id":9')).toBeNull(); // cut inside the number
    expect(recoverId('{"method":"x","params":{"q":"\\"id\\":3"},"id":9}')).toBe(9);
    expect(recoverId('{"method":"x","params":["id",4]')).toBeNull();
    expect(recoverId('{"jsonrpc":"2.0","id":{"a":1}')).toBeNull();
    expect(recoverId('{"jsonrpc":"2.0","id":1.5,')).toBeNull();
  });
});

describe('checkMessage', () => {
  it('passes valid requests, notifications and responses', () => {
    for (const m of [
      { jsonrpc: '2.0', id: 1, method: 'tools/list' },
      { jsonrpc: '2.0', method: 'notifications/cancelled', params: { requestId: 1 } },
      { jsonrpc: '2.0', id: 2, result: {} },
      { jsonrpc: '2.0', id: 3, error: { code: -1, message: 'no' } },
    ])
      expect(checkMessage(m)).toEqual({ kind: 'pass', message: m });
  });

  it('answers a request with an unusable id with id null', () => {
    expect(checkMessage({ jsonrpc: '2.0', id: 1.5, method: 'ping' })).toMatchObject({
      kind: 'reply',
      reply: { id: null, error: { code: -32600 } },
    });
    expect(checkMessage({ jsonrpc: '2.0', id: null, method: 'ping' })).toMatchObject({
      kind: 'reply',
      reply: { id: null, error: { code: -32600 } },
    });
  });
});

describe('tidyError', () => {
  it('cuts a zod issue dump to one line naming the field; leaves other errors alone', () => {
    const dump = JSON.stringify(
      [{ code: 'invalid_type', expected: 'string', path: ['params', 'name'], message: 'Invalid input' }],
      null,
      2,
    );
    const { message, dump: d } = tidyError({ jsonrpc: '2.0', id: 1, error: { code: -32603, message: dump } });
    expect(message).toEqual({
      jsonrpc: '2.0',
      id: 1,
      error: { code: -32602, message: 'Invalid params: params.name: Invalid input' },
    });
    expect(d).toBe(dump);
    const ours = tidyError({
      jsonrpc: '2.0',
      id: 1,
      error: { code: -32602, message: `Invalid tools/call result: ${dump}` },
    });
    expect(ours.message).toMatchObject({ error: { code: -32603 } });
    const plain = { jsonrpc: '2.0' as const, id: 1, error: { code: -32601, message: 'Method not found [x]' } };
    expect(tidyError(plain).message).toBe(plain);
  });
});
