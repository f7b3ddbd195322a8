/**
 * Argument fuzzing (DESIGN §9): every tool, with arguments generated from the input schema it publishes in
 * tools/list and adversarial mutations of them (gen.ts), sent by the SDK's own client to the built CLI over stdio
 * (`serve --stdio`) and Streamable HTTP (`serve --http`), in both protocol eras. Bounds are raised and gates made
 * automatic (fuzzPolicy), so write tools really run against the temp database.
 *
 * Property, per call: a result (a success, or a refusal whose `_meta['itguard/error'].code` is not INTERNAL)
 * within CALL_TIMEOUT_MS, no protocol error. Per server: it stays up, stdout carried only JSON-RPC frames (the
 * client reports any other line to onerror), and `audit verify` passes on its database at the end.
 */
import { join } from 'node:path';
import fc from 'fast-check';
import { Client, StreamableHTTPClientTransport } from '@modelcontextprotocol/client';
import { StdioClientTransport } from '@modelcontextprotocol/client/stdio';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CLI, runCli, serveHttp, type Served } from '../helpers/cli.js';
import { tempDir } from '../helpers/harness.js';
import type { EraName } from '../helpers/v2-clients.js';
import { ALL_TOOLS } from '../../src/tools/index.js';
import { toolCalls, type JsonSchema } from './gen.js';
import { ARG_RUNS, FUZZ_SEED, fuzzPolicy, outcomeOf, show, tally, withTimeout, check } from './support.js';

let tmp: ReturnType<typeof tempDir>;
let policy: string;
beforeAll(() => {
  tmp = tempDir();
  policy = fuzzPolicy(tmp.dir);
});
// FUZZ_KEEP=1 keeps the databases for a look after a failure.
afterAll(() => (process.env.FUZZ_KEEP ? console.log(`fuzz: kept ${tmp?.dir}`) : tmp?.cleanup()));

interface Target {
  client: Client;
  /** Errors the client saw outside a request: a stdout line that is not JSON-RPC lands here. */
  protocolErrors: Error[];
  alive: () => boolean;
  stderr: () => string;
  close: () => Promise<void>;
}

function newClient(era: EraName) {
  const client = new Client(
    { name: `fuzz-${era}`, version: '1' },
    { capabilities: {}, versionNegotiation: { mode: era === 'modern' ? { pin: '2026-07-28' } : 'legacy' } },
  );
  const protocolErrors: Error[] = [];
  client.onerror = (e) => protocolErrors.push(e);
  return { client, protocolErrors };
}

async function stdioTarget(era: EraName, db: string): Promise<Target> {
  const { client, protocolErrors } = newClient(era);
  const transport = new StdioClientTransport({
    command: process.execPath,
    args: [CLI, 'serve', '--stdio', '--db', db, '--policy', policy],
    env: { ...(process.env as Record<string, string>), ITGUARD_LOG_LEVEL: 'warn' },
    stderr: 'pipe',
  });
  let err = '';
  transport.stderr?.on('data', (d: Buffer) => (err = (err + d.toString()).slice(-20_000)));
  let exited = false;
  await client.connect(transport);
  const pid = transport.pid!;
  const alive = () => {
    if (exited) return false;
    try {
      process.kill(pid, 0);
      return true;
    } catch {
      exited = true;
      return false;
    }
  };
  transport.onclose = () => (exited = true);
  return { client, protocolErrors, alive, stderr: () => err, close: () => client.close() };
}

async function httpTarget(era: EraName, served: Served): Promise<Target> {
  const { client, protocolErrors } = newClient(era);
  const transport = new StreamableHTTPClientTransport(new URL(served.url), {
    requestInit: { headers: { Authorization: `Bearer ${served.demoToken}` } },
  });
  await client.connect(transport);
  return {
    client,
    protocolErrors,
    alive: () => served.proc.exitCode === null,
    stderr: () => served.stderr().slice(-20_000),
    close: async () => {
      if (era === 'legacy') await transport.terminateSession().catch(() => undefined);
      await client.close();
    },
  };
}

/** Runs `runs` generated calls against one target and checks the property on each. */
async function fuzz(label: string, t: Target, runs: number, seed: number) {
  const { tools } = await t.client.listTools();
  expect(tools.length).toBe(11);
  const outcomes = new Map<string, number>();
  const started = Date.now();
  let n = 0;
  await check(
    fc.asyncProperty(toolCalls(tools as { name: string; inputSchema: JsonSchema }[]), async (c) => {
      n++;
      const r = await withTimeout(
        t.client.callTool({ name: c.name, arguments: c.args }, { timeout: 60_000 }),
        `${c.name} (${c.kind})`,
      ).catch((e: Error) => {
        // 2026-07-28 over HTTP repeats the tool name in the Mcp-Name header, and the SDK answers 400 with -32020
        // (HeaderMismatch) when the two differ: a clear error, for a name no tool has. They differ for a name with a
        // lone surrogate (a header is UTF-8) and, an SDK bug (@modelcontextprotocol/server 2.4.0, base64ToUtf8: a
        // TextDecoder without ignoreBOM), for one that starts with U+FEFF, whose decoded header loses the BOM.
        if (
          label === 'http/modern' &&
          (LONE_SURROGATE.test(c.name) || c.name.startsWith('\uFEFF')) &&
          /headers and body disagree/.test(e.message)
        ) {
          tally(outcomes, 'unknown tool:HTTP 400 HeaderMismatch');
          return undefined;
        }
        throw new Error(`${label}: ${c.name} threw ${e.message}\nstderr tail:\n${t.stderr().slice(-3000)}`);
      });
      if (r)
        tally(
          outcomes,
          `${ALL.has(c.name) ? c.name : 'unknown tool'}:${outcomeOf(r as Parameters<typeof outcomeOf>[0])}`,
        );
      if (!t.alive()) throw new Error(`${label}: server died\n${t.stderr().slice(-3000)}`);
    }),
    runs,
    seed,
  );
  expect(t.protocolErrors.map((e) => e.message)).toEqual([]);
  expect(t.alive()).toBe(true);
  // The server answers an ordinary call afterwards.
  const status = await t.client.callTool({ name: 'guard_status', arguments: {} });
  expect(status.isError).toBeFalsy();
  console.log(
    `fuzz args ${label}: ${n} calls, seed ${seed}, ${Date.now() - started} ms, 0 crashes; outcomes: ${show(outcomes)}`,
  );
}

const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;
const ALL = new Set<string>(ALL_TOOLS.map((t) => t.name));
const perTarget = Math.max(1, Math.ceil(ARG_RUNS / 4));

describe('argument fuzzing over stdio', () => {
  for (const [i, era] of (['legacy', 'modern'] as const).entries()) {
    it(`serve --stdio, ${era}: ${perTarget} generated calls, every one answered, audit verifies`, async () => {
      const db = join(tmp.dir, `stdio-${era}.db`);
      const t = await stdioTarget(era, db);
      try {
        await fuzz(`stdio/${era}`, t, perTarget, FUZZ_SEED + i);
      } finally {
        await t.close();
      }
      const v = runCli(['audit', 'verify', '--db', db]);
      expect(v.code, v.stdout + v.stderr).toBe(0);
    });
  }
});

describe('argument fuzzing over Streamable HTTP', () => {
  let served: Served;
  let db: string;
  beforeAll(async () => {
    db = join(tmp.dir, 'http.db');
    served = await serveHttp(db, ['--policy', policy]);
  });
  afterAll(async () => served?.stop());

  for (const [i, era] of (['legacy', 'modern'] as const).entries()) {
    it(`serve --http, ${era}: ${perTarget} generated calls, every one answered`, async () => {
      const t = await httpTarget(era, served);
      try {
        await fuzz(`http/${era}`, t, perTarget, FUZZ_SEED + 2 + i);
      } finally {
        await t.close();
      }
    });
  }

  it('the HTTP server is still up and its audit chain verifies', async () => {
    expect(served.proc.exitCode).toBe(null);
    await served.stop();
    const v = runCli(['audit', 'verify', '--db', db]);
    expect(v.code, v.stdout + v.stderr).toBe(0);
  });
});
