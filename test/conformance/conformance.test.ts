/**
 * The MCP conformance suite's server scenarios against the built `serve --http`, in both protocol eras:
 *  - 2025-11-25: `@modelcontextprotocol/conformance` 0.1.13, the newest that runs on Node 20 (a devDependency);
 *  - 2026-07-28: 0.2.0-alpha.12, which needs Node 22, run with `npm exec` and Node 22 from the npm registry
 *    (`--package=node@22.23.3`; the suite's own process only — itguard itself runs on the Node of the test).
 * Every scenario runs; the ones that need features itguard does not offer are listed, with the reason, in
 * expected-failures-<era>.yml. The suite fails on an unlisted failure and on a listed check that passes.
 *
 * The suite sends no Authorization header, and itguard answers /mcp only with a token: a loopback proxy in this
 * test adds the demo token and passes every other header through (the suite's wrong Host and Origin headers
 * included, which is what dns-rebinding-protection checks).
 */
import { spawn } from 'node:child_process';
import { createServer, request, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { serveHttp, type Served } from '../helpers/cli.js';
import { tempDir } from '../helpers/harness.js';
import { writePolicy } from '../helpers/planner.js';
import { demoPolicy } from '../helpers/policy-builder.js';

const HERE = join(import.meta.dirname);
const SUITE_2025 = join(HERE, '../../node_modules/@modelcontextprotocol/conformance/dist/index.js');

let tmp: ReturnType<typeof tempDir>;
let served: Served;
let proxy: Server;
let url = '';

/** Forwards to itguard with the token; its own host:port (and origin) are rewritten to itguard's, others kept. */
function authProxy(target: number, token: string): Promise<Server> {
  const s = createServer((req, res) => {
    const self = (s.address() as AddressInfo).port;
    const headers = { ...req.headers, authorization: `Bearer ${token}` };
    for (const h of ['127.0.0.1', 'localhost']) {
      if (headers.host === `${h}:${self}`) headers.host = `127.0.0.1:${target}`;
      if (headers.origin === `http://${h}:${self}`) headers.origin = `http://127.0.0.1:${target}`;
    }
    const up = request({ host: '127.0.0.1', port: target, path: req.url, method: req.method, headers }, (r) => {
      res.writeHead(r.statusCode ?? 502, r.headers);
      r.pipe(res);
    });
    up.on('error', () => res.destroy());
    req.pipe(up);
  });
  return new Promise((r) => s.listen(0, '127.0.0.1', () => r(s)));
}

function run(cmd: string, args: string[], timeoutMs: number): Promise<{ code: number | null; out: string }> {
  return new Promise((resolve) => {
    const p = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, NO_COLOR: '1' } });
    let out = '';
    p.stdout.on('data', (d: Buffer) => (out += d.toString()));
    p.stderr.on('data', (d: Buffer) => (out += d.toString()));
    const t = setTimeout(() => p.kill('SIGKILL'), timeoutMs);
    p.on('close', (code) => (clearTimeout(t), resolve({ code, out })));
  });
}

beforeAll(async () => {
  tmp = tempDir();
  // The suite is not a bounds test: it calls its fixture tools (UNKNOWN_TOOL here) many times in a row, which
  // the loop breaker would stop; the bounds themselves are tested in test/scenarios/.
  const policy = writePolicy(
    tmp.dir,
    'conformance',
    demoPolicy()
      .loop({ tripped_tasks_per_hour: 100000 })
      .task({ max_calls: 100000, max_identical_calls: 100000, max_consecutive_failures: 100000 })
      .budget({ name: 'fleet-calls-per-hour', window: 'hour', limit: 100000, alarm_at: 100000 })
      .budget({
        name: 'fleet-failures-per-hour',
        window: 'hour',
        measure: 'failures',
        limit: 100000,
        alarm_at: 100000,
      }),
  );
  served = await serveHttp(join(tmp.dir, 'conformance.db'), ['--policy', policy]);
  proxy = await authProxy(Number(new URL(served.url).port), served.demoToken!);
  url = `http://127.0.0.1:${(proxy.address() as AddressInfo).port}/mcp`;
}, 60_000);
afterAll(async () => {
  await new Promise((r) => proxy?.close(r));
  await served?.stop();
  tmp?.cleanup();
});

describe('MCP conformance suite (server scenarios)', () => {
  it('2025-11-25 (conformance 0.1.13): every scenario passes or is an expected failure', async () => {
    const r = await run(
      process.execPath,
      [
        SUITE_2025,
        'server',
        '--url',
        url,
        '--suite',
        'all',
        '--expected-failures',
        join(HERE, 'expected-failures-2025-11-25.yml'),
      ],
      240_000,
    );
    expect(r.out).toContain('Baseline check passed');
    expect(r.code, r.out.slice(-3000)).toBe(0);
  }, 300_000);

  it('2026-07-28 (conformance 0.2.0-alpha.12 on Node 22): every check passes or is an expected failure', async () => {
    const r = await run(
      'npm',
      [
        'exec',
        '--yes',
        '--package=node@22.23.3',
        '--package=@modelcontextprotocol/conformance@0.2.0-alpha.12',
        '--',
        'conformance',
        'server',
        '--url',
        url,
        '--spec-version',
        '2026-07-28',
        '--suite',
        'all',
        '--expected-failures',
        join(HERE, 'expected-failures-2026-07-28.yml'),
      ],
      400_000,
    );
    expect(r.out).toContain('Baseline check passed');
    expect(r.code, r.out.slice(-3000)).toBe(0);
  }, 450_000);
});
