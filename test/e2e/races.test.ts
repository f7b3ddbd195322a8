/** Concurrency and crash claims, with real server processes on one database file, each in a loop. */
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StdioClientTransport } from '@modelcontextprotocol/sdk/client/stdio.js';
import type { CallToolResult } from '@modelcontextprotocol/sdk/types.js';
import { describe, expect, it } from 'vitest';
import { CLI, runCli } from '../helpers/cli.js';
import { tempDir } from '../helpers/harness.js';
import { loadPolicyFile } from '../helpers/policy-file.js';
import { gone, until } from '../helpers/planner.js';

async function stdioClient(db: string, policy: string, env: Record<string, string> = {}) {
  const transport = new StdioClientTransport({
    command: process.execPath,
    args: [CLI, 'serve', '--stdio', '--db', db, '--policy', policy],
    env: { ...(process.env as Record<string, string>), ITGUARD_LOG_LEVEL: 'warn', ...env },
    stderr: 'ignore',
  });
  const client = new Client({ name: 'race', version: '1' });
  await client.connect(transport);
  const call = (name: string, args: Record<string, unknown>) =>
    client.callTool({ name, arguments: args }) as Promise<CallToolResult>;
  return { client, transport, call, pid: transport.pid! };
}
const code = (r: CallToolResult) => (r._meta?.['itguard/error'] as { code?: string } | undefined)?.code;
const ticketCount = (db: string) => {
  const d = new Database(db, { readonly: true });
  const n = (d.prepare('SELECT count(*) AS n FROM tickets').get() as { n: number }).n;
  d.close();
  return n;
};

describe('caps are exact across processes', () => {
  it('4 server processes × 50 concurrent calls at C = 37 admit exactly 37, every run', async () => {
    for (let round = 0; round < 3; round++) {
      const tmp = tempDir();
      const db = join(tmp.dir, 'caps.db');
      const policy = loadPolicyFile(tmp.dir, [{ name: 'tickets-per-day', window: 'day', limit: 37 }]);
      expect(runCli(['status', '--db', db, '--policy', policy]).code).toBe(0); // creates and seeds nothing; migrates
      const servers = await Promise.all(Array.from({ length: 4 }, () => stdioClient(db, policy)));
      const results = await Promise.all(
        servers.flatMap((s, p) =>
          Array.from({ length: 50 }, (_, i) =>
            s.call('ticket_create', { summary: `load p${p} #${i}`, requester: 'jdoe', reason: 'cap test' }),
          ),
        ),
      );
      const ok = results.filter((r) => !r.isError).length;
      const capped = results.filter((r) => code(r) === 'CAP_EXCEEDED').length;
      await Promise.all(servers.map((s) => s.client.close()));
      expect({ round, ok, capped }).toEqual({ round, ok: 37, capped: 163 });
      expect(ticketCount(db)).toBe(37);
      tmp.cleanup();
    }
  }, 180_000);

  it('the cost measure never goes over its limit under concurrent reservations from 4 processes', async () => {
    for (let round = 0; round < 3; round++) {
      const tmp = tempDir();
      const db = join(tmp.dir, 'cost.db');
      const worker = join(import.meta.dirname, '../helpers/cost-worker.mjs');
      const outs = await Promise.all(
        Array.from(
          { length: 4 },
          (_, w) =>
            new Promise<string>((resolve, reject) => {
              const p = spawn(process.execPath, [worker, db, String(w)], { stdio: ['ignore', 'pipe', 'inherit'] });
              let out = '';
              p.stdout.on('data', (d: Buffer) => (out += d.toString()));
              p.on('exit', (c) => (c === 0 ? resolve(out) : reject(new Error(`worker exit ${c}`))));
            }),
        ),
      );
      const admitted = outs.map((o) => JSON.parse(o) as { sum: number }).reduce((a, b) => a + b.sum, 0);
      const d = new Database(db, { readonly: true });
      const used = (d.prepare("SELECT used FROM cap_usage WHERE rule = 'spend'").get() as { used: number }).used;
      d.close();
      expect(used).toBeLessThanOrEqual(2000);
      expect(Math.abs(used - admitted)).toBeLessThan(1e-6);
      expect(used).toBeGreaterThan(2000 - 240); // filled up to within one max-price item
      tmp.cleanup();
    }
  }, 120_000);
});

describe('crash safety', () => {
  for (const point of ['after-effect', 'before-effect'] as const) {
    it(`kill -9 at ${point}, restart, retry with the same key → exactly one ticket, chain verifies`, async () => {
      const tmp = tempDir();
      const db = join(tmp.dir, 'crash.db');
      const policy = loadPolicyFile(tmp.dir, [{ name: 'tickets-per-day', window: 'day', limit: 100 }]);
      const args = {
        summary: 'Crash during write',
        requester: 'jdoe',
        reason: 'crash test',
        idempotency_key: 'crash-e2e-0001',
      };
      const victim = await stdioClient(db, policy, { ITGUARD_FAILPOINT: point });
      void victim.call('ticket_create', args).catch(() => undefined);
      // wait until the process is stalled at the failpoint: the intent is in the audit (and, after-effect, the ticket exists)
      const deadline = Date.now() + 10_000;
      for (;;) {
        const d = new Database(db, { readonly: true });
        const intent = d.prepare("SELECT count(*) AS n FROM audit WHERE event = 'call.intent'").get() as { n: number };
        const tickets = (d.prepare('SELECT count(*) AS n FROM tickets').get() as { n: number }).n;
        d.close();
        if (intent.n > 0 && (point === 'before-effect' || tickets > 0)) break;
        if (Date.now() > deadline) throw new Error('failpoint not reached');
        await new Promise((r) => setTimeout(r, 50));
      }
      process.kill(victim.pid, 'SIGKILL');
      // Once the victim is gone nothing of it can still write: the count is final, not a guess after a pause.
      await until('the victim to be gone', 5_000, () => gone(victim.pid));
      expect(ticketCount(db)).toBe(point === 'after-effect' ? 1 : 0);

      const again = await stdioClient(db, policy);
      const r = await again.call('ticket_create', args);
      expect(r.isError).toBeFalsy();
      if (point === 'after-effect') expect(r._meta?.['itguard/replay']).toBeDefined();
      const r2 = await again.call('ticket_create', args);
      expect(r2._meta?.['itguard/replay']).toBeDefined();
      await again.client.close();
      expect(ticketCount(db)).toBe(1);
      expect(runCli(['audit', 'verify', '--db', db, '--policy', policy]).code).toBe(0);
      // Every executed effect has its intent: the killed attempt's, plus the retry's when it had to run again.
      const d = new Database(db, { readonly: true });
      const intents = (
        d.prepare("SELECT count(*) AS n FROM audit WHERE event = 'call.intent' AND tool = 'ticket_create'").get() as {
          n: number;
        }
      ).n;
      d.close();
      expect(intents).toBe(point === 'before-effect' ? 2 : 1);
      tmp.cleanup();
    }, 60_000);
  }
});
