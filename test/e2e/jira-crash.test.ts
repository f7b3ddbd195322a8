/**
 * Issue 9: Jira against a loopback stand-in, and a kill -9 between create and response followed by a retry makes
 * exactly one issue. The built CLI (`serve --stdio`) runs with real backends (test/helpers/peers.ts); a victim
 * process is killed with SIGKILL at three points of one ticket_create, a fresh process is started on the same
 * database, policy and environment, and the same call is retried with the same idempotency_key:
 *
 * - Jira committed the issue but its HTTP answer never reached itguard (it hangs in a loopback proxy);
 * - Jira answered, itguard died before recording the outcome (ITGUARD_FAILPOINT=after-effect);
 * - itguard died before it sent anything (ITGUARD_FAILPOINT=before-effect).
 *
 * What is counted is the stand-in's own state (its issues and the POSTs it received), not what a client saw.
 * The proxy exists because the stand-in's `dropNext('create')` destroys the socket: itguard then learns at once
 * that the outcome is unknown and looks the issue up itself, so the crash would never land in that window.
 */
import { createHash } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StdioClientTransport } from '@modelcontextprotocol/sdk/client/stdio.js';
import type { CallToolResult } from '@modelcontextprotocol/sdk/types.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CLI } from '../helpers/cli.js';
import { textOf } from '../helpers/harness.js';
import { runCliAsync, startPeers, type Peers } from '../helpers/peers.js';
import { count, gone, peek, until } from '../helpers/planner.js';

const CREATE_PATH = /^\/rest\/api\/3\/issue$/;

/**
 * A transparent loopback proxy in front of the stand-in. Once armed, the next POST /rest/api/3/issue is forwarded
 * and answered by the stand-in (the issue is committed), and then the answer is held: itguard's request hangs.
 */
interface HangingProxy {
  url: string;
  /** Resolves with the stand-in's status once the next create has been committed and its answer withheld. */
  holdNextCreate(): Promise<number>;
  close(): Promise<void>;
}

async function hangingProxy(upstream: string): Promise<HangingProxy> {
  let hold: ((status: number) => void) | undefined;
  const forward = async (req: IncomingMessage, res: ServerResponse) => {
    const chunks: Buffer[] = [];
    for await (const c of req) chunks.push(c as Buffer);
    const headers: Record<string, string> = {};
    for (const h of ['authorization', 'accept', 'content-type']) {
      const v = req.headers[h];
      if (typeof v === 'string') headers[h] = v;
    }
    const up = await fetch(new URL(req.url ?? '/', upstream), {
      method: req.method ?? 'GET',
      headers,
      body: chunks.length ? Buffer.concat(chunks) : undefined,
      redirect: 'manual',
    });
    const text = await up.text();
    const path = new URL(req.url ?? '/', 'http://proxy').pathname;
    if (hold && req.method === 'POST' && CREATE_PATH.test(path)) {
      const held = hold;
      hold = undefined;
      held(up.status); // the answer is never written; the socket stays open until itguard dies
      return;
    }
    res.writeHead(up.status, { 'content-type': up.headers.get('content-type') ?? 'application/json' });
    res.end(text);
  };
  const server = createServer((req, res) => void forward(req, res).catch(() => res.destroy()));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    holdNextCreate: () => new Promise<number>((resolve) => (hold = resolve)),
    close: async () => {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

/** `p`, or a failure naming `what` after `ms`: every wait in these tests is bounded. */
async function within<T>(ms: number, what: string, p: Promise<T>): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms waiting for ${what}`)), ms);
  });
  try {
    return await Promise.race([p, late]);
  } finally {
    clearTimeout(timer);
  }
}

interface Case {
  name: string;
  id: string;
  failpoint?: 'before-effect' | 'after-effect';
  /** The create's answer is held by the proxy (the issue is committed, itguard never hears back). */
  hang?: true;
  /** Whether the issue exists in Jira when the victim dies. */
  committed: boolean;
}

const CASES: Case[] = [
  { name: 'Jira committed the create, its answer hangs', id: 'hang', hang: true, committed: true },
  {
    name: 'ITGUARD_FAILPOINT=after-effect (answered, outcome not recorded)',
    id: 'after',
    failpoint: 'after-effect',
    committed: true,
  },
  {
    name: 'ITGUARD_FAILPOINT=before-effect (nothing sent)',
    id: 'before',
    failpoint: 'before-effect',
    committed: false,
  },
];

describe('kill -9 during a Jira ticket_create, restart, retry with the same key (stdio, the built CLI)', () => {
  let peers: Peers;
  let proxy: HangingProxy;
  /** The peers' policy with the tickets backend behind the proxy: the one every process of every case reads. */
  let policy: string;
  const open: Client[] = [];

  beforeAll(async () => {
    peers = await startPeers();
    proxy = await hangingProxy(peers.jira.url);
    const yaml = readFileSync(peers.policyFile, 'utf8');
    const direct = `base_url: ${JSON.stringify(peers.jira.url)}`;
    expect(yaml).toContain(direct);
    policy = join(peers.dir, 'itguard-proxied.yaml');
    writeFileSync(policy, yaml.replace(direct, `base_url: ${JSON.stringify(proxy.url)}`));
  }, 30_000);

  afterAll(async () => {
    await Promise.all(open.map((c) => c.close().catch(() => undefined)));
    await proxy?.close();
    await peers?.stop();
  });

  /** `serve --stdio` on `db` with the policy's secrets in its environment, and a fresh SDK client. */
  async function serve(db: string, extra: Record<string, string> = {}) {
    const inherited = Object.fromEntries(
      Object.entries(process.env).filter(
        (e): e is [string, string] => e[1] !== undefined && e[0] !== 'ITGUARD_FAILPOINT',
      ),
    );
    const transport = new StdioClientTransport({
      command: process.execPath,
      args: [CLI, 'serve', '--stdio', '--policy', policy, '--db', db],
      env: { ...inherited, ...peers.env, ITGUARD_LOG_LEVEL: 'warn', ...extra },
      stderr: 'pipe',
    });
    let log = '';
    transport.stderr!.on('data', (d: Buffer) => (log += d.toString()));
    const client = new Client({ name: 'e2e-jira-crash', version: '1.0.0' });
    open.push(client);
    await client.connect(transport);
    return {
      pid: transport.pid!,
      log: () => log,
      call: (args: Record<string, unknown>) =>
        client.callTool({ name: 'ticket_create', arguments: args }) as Promise<CallToolResult>,
      close: () => client.close(),
    };
  }

  const posts = () => peers.jira.count('POST', CREATE_PATH);
  const withSummary = (summary: string) => peers.jira.issues.filter((i) => i.summary === summary);
  const withLabel = (label: string) => peers.jira.issues.filter((i) => i.labels.includes(label));
  const record = (db: string, key: string) =>
    peek(
      db,
      (d) =>
        d.prepare('SELECT request_id, state FROM idempotency WHERE key = ?').get(`k:${key}`) as
          { request_id: string; state: string } | undefined,
    );
  const intents = (db: string) => {
    try {
      return count(db, "SELECT count(*) AS n FROM audit WHERE event = 'call.intent' AND tool = 'ticket_create'");
    } catch {
      return 0; // the victim has not created the file yet
    }
  };

  for (const c of CASES) {
    it(`${c.name}: the retry after a restart answers with the one issue Jira has, and the audit verifies`, async () => {
      const db = join(peers.dir, `${c.id}.db`);
      const args = {
        summary: `Laptop docking station not detected (crash ${c.id})`,
        description: 'The USB-C dock stopped working after the firmware update.',
        requester: 'mlopez',
        priority: 'medium',
        reason: 'the user asked in chat',
        idempotency_key: `e2e-jira-crash-${c.id}-0001`,
      };
      const before = posts();
      const held = c.hang ? proxy.holdNextCreate() : undefined;

      const victim = await serve(db, c.failpoint ? { ITGUARD_FAILPOINT: c.failpoint } : {});
      let answered = false;
      void victim.call(args).then(
        () => (answered = true),
        () => undefined, // the transport closes when the process dies
      );

      // Wait until the victim is inside the window this case is about.
      if (held) {
        expect(await within(15_000, 'the create to be committed in Jira', held)).toBe(201);
      } else if (c.failpoint === 'after-effect') {
        // itguard reads the issue back only after Jira's 201 reached it: from then on it has an answer to record.
        await until('itguard to read the created issue back', 15_000, () => {
          const key = withSummary(args.summary)[0]?.key;
          return key && peers.jira.requests.some((r) => r.method === 'GET' && r.path === `/rest/api/3/issue/${key}`)
            ? true
            : undefined;
        });
      } else {
        await until('the intent to be audited', 15_000, () => (intents(db) > 0 ? true : undefined));
      }
      process.kill(victim.pid, 'SIGKILL');
      await until('the victim to be gone', 5_000, () => gone(victim.pid));
      await victim.close().catch(() => undefined);

      // The crash left the record in flight, and Jira holds the issue or nothing.
      expect(answered).toBe(false);
      const orphan = record(db, args.idempotency_key);
      expect(orphan?.state).toBe('in_flight');
      const label = `itguard-req-${createHash('sha256').update(orphan!.request_id).digest('hex')}`;
      expect(withLabel(label)).toHaveLength(c.committed ? 1 : 0);
      expect(posts() - before).toBe(c.committed ? 1 : 0);

      const again = await serve(db);
      const posted = posts();
      const r = await again.call(args);
      expect(r.isError, `${textOf(r)}\n${again.log()}`).toBeFalsy();
      const key = (r.structuredContent as { key?: string }).key;
      const issues = withLabel(label);
      expect(issues).toHaveLength(1);
      expect(withSummary(args.summary)).toHaveLength(1);
      expect(key).toBe(issues[0]!.key);
      expect(issues[0]!.labels).toContain('requester-mlopez');
      if (c.committed) {
        // Recovered from Jira: answered as a replay of the first attempt, and no second POST /issue.
        expect(r._meta?.['itguard/replay']).toBeDefined();
        expect(posts()).toBe(posted);
      } else {
        // Jira never saw the first attempt: the retry created the issue, once.
        expect(r._meta?.['itguard/replay']).toBeUndefined();
        expect(posts()).toBe(posted + 1);
      }
      expect(record(db, args.idempotency_key)).toEqual({ request_id: orphan!.request_id, state: 'completed' });

      // The outcome is recorded now: one more retry is a replay from the database, still nothing sent.
      const replay = await again.call(args);
      expect(replay._meta?.['itguard/replay']).toBeDefined();
      expect((replay.structuredContent as { key?: string }).key).toBe(key);
      expect(posts() - before).toBe(1);
      await again.close();

      const verify = await runCliAsync(['audit', 'verify', '--db', db, '--policy', policy], peers.env);
      expect(verify.code, verify.stdout + verify.stderr).toBe(0);
    }, 45_000);
  }
});
