/** Client mistakes are 4xx with a short body and no error-level log: bad percent-encoding, bad or odd bodies. */
import { brotliCompressSync, gzipSync } from 'node:zlib';
import pino from 'pino';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import type { SqliteApp as App } from '../../src/app.js';
import { startHttp, startVerifyListener, type RunningHttp } from '../../src/http/app.js';
import { testApp } from '../helpers/harness.js';

let lines: { level: number; msg: string; err?: { stack?: string } }[] = [];
const log = pino(
  { level: 'trace' },
  { write: (s: string) => void lines.push(JSON.parse(s) as (typeof lines)[number]) },
);
let app: App;
let http: RunningHttp;
let token: string;
beforeAll(async () => {
  app = testApp({ log });
  http = await startHttp(app, { host: '127.0.0.1', port: 0 });
  token = app.sqlite.tokens.create('helpdesk-agent', 'test').token;
});
afterAll(async () => {
  await http.close();
  app.close();
});
beforeEach(() => {
  lines = [];
});
const noErrorLogged = () =>
  expect(lines.filter((l) => l.level >= 50).map((l) => `${l.msg} ${l.err?.stack ?? ''}`)).toEqual([]);
const init = JSON.stringify({
  jsonrpc: '2.0',
  id: 1,
  method: 'initialize',
  params: { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: 'x', version: '1' } },
});
const postMcp = (body: string | Buffer, extra: Record<string, string>) =>
  fetch(`${http.url}/mcp`, {
    method: 'POST',
    headers: {
      'content-type': 'application/json',
      accept: 'application/json, text/event-stream',
      authorization: `Bearer ${token}`,
      ...extra,
    },
    body,
  });

describe('HTTP parser errors are 4xx', () => {
  for (const path of ['/verify/%E0%A4%A', '/reset/%zz', '/verify/abc%', '/reset/%E0%A4%A']) {
    it(`GET ${path}: 400, no error log`, async () => {
      const res = await fetch(`${http.url}${path}`);
      expect(res.status).toBe(400);
      const text = await res.text();
      expect(text).not.toMatch(/URIError|at decodeParam|node_modules/);
      expect(text).toMatch(/not valid/i);
      noErrorLogged();
    });
  }

  it('POST /reset/%zz: 400, no error log', async () => {
    const res = await fetch(`${http.url}/reset/%zz`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: 'password=x',
    });
    expect(res.status).toBe(400);
    noErrorLogged();
  });

  it('POST /mcp with an unsupported Content-Encoding: 415 with a JSON-RPC error, no error log', async () => {
    for (const enc of ['compress', 'x-snappy']) {
      const res = await postMcp(init, { 'content-encoding': enc });
      expect(res.status, enc).toBe(415);
      expect(await res.json()).toMatchObject({
        jsonrpc: '2.0',
        id: null,
        error: { code: -32000, message: expect.stringMatching(/encoding/i) },
      });
    }
    noErrorLogged();
  });

  it('POST /mcp with br/gzip that does not decode: 400; valid gzip and br bodies are served', async () => {
    for (const enc of ['br', 'gzip', 'deflate']) {
      const res = await postMcp('not compressed at all', { 'content-encoding': enc });
      expect(res.status, enc).toBe(400);
      expect(await res.json()).toMatchObject({ jsonrpc: '2.0', id: null, error: { code: -32700 } });
    }
    noErrorLogged();
    expect((await postMcp(gzipSync(init), { 'content-encoding': 'gzip' })).status).toBe(200);
    expect((await postMcp(brotliCompressSync(init), { 'content-encoding': 'br' })).status).toBe(200);
  });

  it('POST /mcp with an unsupported charset: 415; a body that is not JSON: 400 -32700', async () => {
    const res = await postMcp(init, { 'content-type': 'application/json; charset=klingon' });
    expect(res.status).toBe(415);
    const bad = await postMcp('{"jsonrpc":', {});
    expect(bad.status).toBe(400);
    expect(await bad.json()).toMatchObject({ error: { code: -32700 } });
    noErrorLogged();
  });

  it('plain JSON bodies (the lean reader) answer as express.json did: BOM, charset, scalars, size, too large', async () => {
    // A UTF-8 BOM and an explicit utf-8 charset are accepted: the initialize is served.
    const bom = await postMcp(Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), Buffer.from(init)]), {
      'content-type': 'application/json; charset=UTF-8',
    });
    expect(bom.status).toBe(200);
    await bom.body?.cancel();
    // JSON that is not an object or array is a parse error, as in express.json's strict mode.
    for (const text of ['null', '42', '"x"', '  true ']) {
      const r = await postMcp(text, {});
      expect(r.status).toBe(400);
      expect(await r.json()).toMatchObject({ error: { code: -32700 } });
    }
    // Over the 1 MiB limit: 413, whether the reader sees the length or body-parser reads a chunked body.
    const big = `{"jsonrpc":"2.0","id":1,"method":"ping","params":{"pad":"${'x'.repeat(1024 * 1024)}"}}`;
    const tooLarge = await postMcp(big, {});
    expect(tooLarge.status).toBe(413);
    expect(await tooLarge.json()).toMatchObject({ error: { message: 'Request body too large' } });
    const chunked = await fetch(`${http.url}/mcp`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` },
      body: new Blob([big]).stream(),
      duplex: 'half',
    } as RequestInit);
    expect(chunked.status).toBe(413);
    await chunked.body?.cancel();
    noErrorLogged();
  });

  it('the stdio-mode verification listener answers bad percent-encoding with 400 too', async () => {
    const v = await startVerifyListener(app, 0);
    try {
      const res = await fetch(`${v.url}/verify/%E0%A4%A`);
      expect(res.status).toBe(400);
      noErrorLogged();
    } finally {
      await v.close();
      app.links.base = http.url;
    }
  });
});
