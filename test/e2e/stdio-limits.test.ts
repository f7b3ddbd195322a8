/**
 * serve --stdio with hostile input: oversized lines, truncated JSON, wrong envelopes and bad params. Every request
 * with an id gets exactly one JSON-RPC answer with the code JSON-RPC prescribes, and the server keeps serving.
 */
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { CLI } from '../helpers/cli.js';
import { tempDir } from '../helpers/harness.js';

interface Frame {
  jsonrpc: string;
  id?: string | number | null;
  result?: Record<string, unknown>;
  error?: { code: number; message: string };
}

let tmp: ReturnType<typeof tempDir>;
let n = 0;
const running: ChildProcessWithoutNullStreams[] = [];
beforeAll(() => {
  tmp = tempDir();
});
afterEach(() => {
  for (const p of running.splice(0)) if (p.exitCode === null) p.kill('SIGKILL');
});
afterAll(() => tmp.cleanup());

function serveStdio() {
  const proc = spawn(process.execPath, [CLI, 'serve', '--stdio', '--db', join(tmp.dir, `s${n++}.db`)], {
    stdio: ['pipe', 'pipe', 'pipe'],
    env: { ...process.env, ITGUARD_LOG_LEVEL: 'debug' },
  });
  running.push(proc);
  let out = '';
  let err = '';
  proc.stdout.on('data', (d: Buffer) => (out += d.toString()));
  proc.stderr.on('data', (d: Buffer) => (err += d.toString()));
  const frames = () =>
    out
      .split('\n')
      .filter(Boolean)
      .map((l) => JSON.parse(l) as Frame);
  const raw = (line: string) => proc.stdin.write(`${line}\n`);
  const send = (m: object) => raw(JSON.stringify(m));
  /** Resolves once a frame with this id is on stdout. */
  const reply = (id: string | number | null, timeoutMs = 10_000) =>
    new Promise<Frame>((resolve, reject) => {
      const find = () => frames().find((f) => f.id === id && (f.result !== undefined || f.error !== undefined));
      const t = setTimeout(
        () => reject(new Error(`no reply to id ${id}; stdout:\n${out.slice(-2000)}\nstderr:\n${err.slice(-3000)}`)),
        timeoutMs,
      );
      const check = () => {
        const f = find();
        if (f) {
          clearTimeout(t);
          proc.stdout.off('data', check);
          resolve(f);
        }
      };
      proc.stdout.on('data', check);
      check();
    });
  const init = async () => {
    send({
      jsonrpc: '2.0',
      id: 'init',
      method: 'initialize',
      params: { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: 'raw', version: '1' } },
    });
    await reply('init');
    send({ jsonrpc: '2.0', method: 'notifications/initialized' });
  };
  return { proc, raw, send, reply, frames, init, stdout: () => out, stderr: () => err };
}

const LIMIT = 4 * 1024 * 1024;

describe('serve --stdio: line size limit', () => {
  it('answers a line over the limit with -32600 and the id, and keeps serving', async () => {
    const s = serveStdio();
    await s.init();
    // 5 MB: under the SDK's own 10 MB buffer, over ours.
    s.send({
      jsonrpc: '2.0',
      id: 7,
      method: 'tools/call',
      params: { name: 'kb_search', arguments: { query: 'x'.repeat(5_000_000) } },
    });
    const big = await s.reply(7);
    expect(big.error).toEqual({ code: -32600, message: `request too large (limit ${LIMIT} bytes)` });
    s.send({ jsonrpc: '2.0', id: 8, method: 'tools/call', params: { name: 'guard_status', arguments: {} } });
    expect((await s.reply(8)).result).toBeDefined();
    expect(s.stderr()).toMatch(/over the line limit/);
  });

  it('survives a line over the SDK buffer (11 MB, id not recoverable): id null, then serves the next request', async () => {
    const s = serveStdio();
    await s.init();
    // The id comes after the large member: it is not recovered, so the answer carries id null.
    s.raw(
      `{"jsonrpc":"2.0","method":"tools/call","params":{"name":"kb_search","arguments":{"query":"${'y'.repeat(11_000_000)}"}},"id":9}`,
    );
    const big = await s.reply(null);
    expect(big.error?.code).toBe(-32600);
    s.send({ jsonrpc: '2.0', id: 10, method: 'ping' });
    expect((await s.reply(10)).result).toEqual({});
    expect(s.frames().some((f) => f.id === 9)).toBe(false);
    const dropped = s.stderr().match(/"bytes":(\d+)/);
    expect(Number(dropped?.[1])).toBeGreaterThan(11_000_000);
  });
});

describe('serve --stdio: invalid requests get JSON-RPC errors', () => {
  it('parse errors, bad envelopes, bad params: one answer per id with -32700/-32600/-32602', async () => {
    const s = serveStdio();
    // initialize with bad params first: -32602, and the real initialize after it still works
    s.send({
      jsonrpc: '2.0',
      id: 'i0',
      method: 'initialize',
      params: { protocolVersion: '2025-06-18', capabilities: {} },
    });
    const badInit = await s.reply('i0');
    expect(badInit.error?.code).toBe(-32602);
    expect(badInit.error?.message).toMatch(/clientInfo/);
    await s.init();

    s.raw('{"jsonrpc":"2.0","id":1,"method":"tools/list"'); // truncated
    expect((await s.reply(null)).error).toMatchObject({ code: -32700 });

    const cases: [id: number, line: string, code: number, message: RegExp][] = [
      [11, '{"jsonrpc":"1.0","id":11,"method":"tools/list"}', -32600, /jsonrpc/],
      [12, '{"jsonrpc":"2.0","id":12}', -32600, /method/],
      [13, '{"jsonrpc":"2.0","id":13,"method":"tools/call","params":{"name":42}}', -32602, /params\.name/],
      [
        14,
        '{"jsonrpc":"2.0","id":14,"method":"tools/call","params":{"name":"kb_search","arguments":"q=vpn"}}',
        -32602,
        /params\.arguments/,
      ],
      [15, '{"jsonrpc":"2.0","id":15,"method":"tools/call"}', -32602, /params/],
      [16, '{"jsonrpc":"2.0","id":16,"method":"tools/list","params":{"cursor":5}}', -32602, /params\.cursor/],
      [17, '{"jsonrpc":"2.0","id":17,"method":"tools/list","params":"all"}', -32602, /params/],
      [18, '{"jsonrpc":"2.0","id":18,"method":42}', -32600, /method/],
      [19, '{"jsonrpc":"2.0","id":19,"method":"tools/list","extra":true}', -32600, /extra/],
      [20, '{"jsonrpc":"2.0","id":20,"method":"logging/setLevel","params":{"level":"loud"}}', -32602, /level/],
      [
        21,
        '{"jsonrpc":"2.0","id":21,"method":"tools/call","params":{"name":"kb_search","arguments":{},"_meta":{"progressToken":{}}}}',
        -32602,
        /progressToken/,
      ],
      [
        22,
        '{"jsonrpc":"2.0","id":22,"method":"tools/call","params":{"name":"kb_search","arguments":null}}',
        -32602,
        /params\.arguments/,
      ],
      // not checked ahead: the SDK's own zod error, cut to one line on the way out
      [
        23,
        '{"jsonrpc":"2.0","id":23,"method":"tools/call","params":{"name":"kb_search","arguments":{},"task":5}}',
        -32602,
        /params\.task/,
      ],
    ];
    for (const [, line] of cases) s.raw(line);
    for (const [id, , code, message] of cases) {
      const f = await s.reply(id);
      expect(f.error, `id ${id}`).toBeDefined();
      expect(f.error!.code, `id ${id}: ${f.error!.message}`).toBe(code);
      expect(f.error!.message, `id ${id}`).toMatch(message);
      // short and written for a person: no zod issue dump
      expect(f.error!.message.length, `id ${id}: ${f.error!.message}`).toBeLessThan(160);
      expect(f.error!.message, `id ${id}`).not.toMatch(/"code"|\n|\[\s*\{/);
    }

    // Not objects, batches, a bad id type: -32600 with id null.
    const before = s.frames().filter((f) => f.id === null).length;
    s.raw('[{"jsonrpc":"2.0","id":30,"method":"ping"}]');
    s.raw('42');
    s.raw('{"jsonrpc":"2.0","id":{"x":1},"method":"ping"}');
    // Notifications with a bad shape and responses nobody asked for are dropped, not answered.
    s.raw('{"jsonrpc":"2.0","method":7}');
    s.raw('{"jsonrpc":"1.0","method":"notifications/initialized"}');
    s.raw('{"jsonrpc":"2.0","id":"never-asked","result":{}}');
    s.send({ jsonrpc: '2.0', id: 99, method: 'tools/call', params: { name: 'guard_status', arguments: {} } });
    expect((await s.reply(99)).result).toBeDefined();
    const nulls = s.frames().filter((f) => f.id === null);
    expect(nulls.length - before).toBe(3);
    for (const f of nulls) expect([-32700, -32600]).toContain(f.error?.code);
    expect(s.frames().some((f) => f.id === 30)).toBe(false);
    expect(s.stderr()).toMatch(/dropped an invalid notification/);

    // stdout carried only JSON-RPC frames, and every id got exactly one answer.
    for (const f of s.frames()) expect(f.jsonrpc).toBe('2.0');
    const ids = s.frames().flatMap((f) => (f.id === null || f.id === undefined ? [] : [f.id]));
    expect(new Set(ids).size).toBe(ids.length);
  });
});

describe('serve --stdio on 2026-07-28: the same line checks under the SDK’s dual-era entry', () => {
  const env = {
    'io.modelcontextprotocol/protocolVersion': '2026-07-28',
    'io.modelcontextprotocol/clientInfo': { name: 'raw', version: '1' },
    'io.modelcontextprotocol/clientCapabilities': {},
  };
  it('server/discover opens a modern connection; bad and oversized lines are answered and serving goes on', async () => {
    const s = serveStdio();
    s.send({ jsonrpc: '2.0', id: 'd', method: 'server/discover', params: { _meta: env } });
    const discover = await s.reply('d');
    expect(JSON.stringify(discover.result)).toContain('2026-07-28');
    s.send({ jsonrpc: '2.0', id: 1, method: 'tools/list', params: { _meta: env } });
    expect(((await s.reply(1)).result?.tools as unknown[]).length).toBe(11);

    s.raw('{"jsonrpc":"2.0","id":2,"method":"tools/list"'); // truncated
    expect((await s.reply(null)).error).toMatchObject({ code: -32700 });
    s.send({
      jsonrpc: '2.0',
      id: 3,
      method: 'tools/call',
      params: { name: 'kb_search', arguments: { query: 'x'.repeat(5_000_000) }, _meta: env },
    });
    expect((await s.reply(3)).error).toEqual({ code: -32600, message: `request too large (limit ${LIMIT} bytes)` });
    // The MRTR retry members are checked like the others.
    s.send({
      jsonrpc: '2.0',
      id: 4,
      method: 'tools/call',
      params: { name: 'kb_search', arguments: {}, inputResponses: 'yes', _meta: env },
    });
    expect((await s.reply(4)).error).toMatchObject({ code: -32602, message: /params\.inputResponses/ });
    s.send({
      jsonrpc: '2.0',
      id: 5,
      method: 'tools/call',
      params: { name: 'kb_search', arguments: {}, requestState: 7, _meta: env },
    });
    expect((await s.reply(5)).error).toMatchObject({ code: -32602, message: /params\.requestState/ });

    s.send({
      jsonrpc: '2.0',
      id: 6,
      method: 'tools/call',
      params: { name: 'guard_status', arguments: {}, _meta: env },
    });
    const status = (await s.reply(6)).result as { structuredContent: { task: Record<string, unknown> } };
    // No session on 2026-07-28; over stdio the connection identifies the task.
    expect(status.structuredContent.task).toMatchObject({ identified_by: 'session' });

    // stdout carried only JSON-RPC frames, one answer per id.
    for (const f of s.frames()) expect(f.jsonrpc).toBe('2.0');
    const ids = s.frames().flatMap((f) => (f.id === null || f.id === undefined ? [] : [f.id]));
    expect(new Set(ids).size).toBe(ids.length);
  });
});
