/**
 * A crash during an approved action never leaves it stuck (issue 8): approve a software_install, kill -9 the
 * server while its executor runs it (stalled at a failpoint), restart, and the request is resolved within
 * seconds — run once if it provably never started, recorded from the backend's record if it did — with exactly
 * one install job, prompt replays for every kind of retry, and an audit chain that verifies.
 */
import { join } from 'node:path';
import type { CallToolResult } from '@modelcontextprotocol/sdk/types.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli } from '../helpers/cli.js';
import { tempDir } from '../helpers/harness.js';
import { demoPolicy } from '../helpers/policy-builder.js';
import {
  codeOf,
  count,
  errOf,
  peek,
  seedDb,
  stdioPlanner,
  until,
  writePolicy,
  type Planner,
  gone,
} from '../helpers/planner.js';

let tmp: ReturnType<typeof tempDir>;
const open: Planner[] = [];
beforeAll(() => {
  tmp = tempDir();
});
afterAll(async () => {
  await Promise.all(open.map((p) => p.close().catch(() => undefined)));
  tmp.cleanup();
});

const WAIT_SECONDS = 2;
const approval = (db: string, id: string) =>
  peek(
    db,
    (d) =>
      d.prepare('SELECT status, runner, request_id, result FROM approvals WHERE id = ?').get(id) as {
        status: string;
        runner: string | null;
        request_id: string | null;
        result: string | null;
      },
  );
const jobs = (db: string) => count(db, 'SELECT count(*) AS n FROM install_jobs');
const jobOf = (r: CallToolResult) => (r.structuredContent as { job_id?: string } | undefined)?.job_id;

describe('kill -9 while the executor runs an approved request', () => {
  for (const point of ['before-effect', 'after-effect'] as const) {
    it(`at ${point}: restart resolves it within seconds, exactly one install job, every retry replays promptly, audit verifies`, async () => {
      const policy = writePolicy(tmp.dir, point, demoPolicy().approvals({ wait_seconds: WAIT_SECONDS }));
      const db = join(tmp.dir, `${point}.db`);
      seedDb(db, policy);
      const args = {
        user: 'jdoe',
        package: 'adobe-acrobat-pro',
        device_id: 'LT-1001',
        reason: 'needs to edit PDF contracts',
        idempotency_key: `crash-${point}-0001`,
      };

      const victim = await stdioPlanner(db, policy, { ITGUARD_FAILPOINT: point });
      open.push(victim);
      const pending = await victim.call('software_install', args);
      expect(codeOf(pending)).toBe('APPROVAL_PENDING');
      const id = errOf(pending)!.request_id!;
      expect(runCli(['approvals', 'approve', id, '--db', db, '--policy', policy]).code).toBe(0);

      // the victim's executor claims it, writes the intent, and stalls at the failpoint
      await until(`the executor to stall at ${point}`, 10_000, () => {
        const a = approval(db, id);
        const intent = count(
          db,
          "SELECT count(*) AS n FROM audit WHERE event = 'call.intent' AND tool = 'software_install'",
        );
        return a.status === 'executing' && intent === 1 && (point === 'before-effect' || jobs(db) === 1)
          ? true
          : undefined;
      });
      expect(approval(db, id).runner).toContain(`:${victim.pid}:`);
      process.kill(victim.pid, 'SIGKILL');
      await until('the victim to be gone', 5_000, () => gone(victim.pid));
      expect(approval(db, id).status).toBe('executing');
      expect(jobs(db)).toBe(point === 'after-effect' ? 1 : 0);

      // two processes restart on the file; both executors see the orphan, exactly one takes it over
      const started = Date.now();
      const [again, other] = await Promise.all([stdioPlanner(db, policy), stdioPlanner(db, policy)]);
      open.push(again, other);
      // a retry (no key, another session) while the request may still be recovering is answered at once, never hung
      const early = await other.call('software_install', { ...args, idempotency_key: undefined });
      expect(Date.now() - started).toBeLessThan((WAIT_SECONDS + 3) * 1000);
      expect(['APPROVAL_PENDING', undefined]).toContain(codeOf(early));

      const done = await until('the restarted server to resolve the request', 6_000, () => {
        const a = approval(db, id);
        return a.status === 'executing' ? undefined : a;
      });
      expect(done.status).toBe('succeeded');
      expect(jobs(db)).toBe(1);
      const job = peek(
        db,
        (d) => d.prepare('SELECT id, request_id FROM install_jobs').get() as { id: string; request_id: string },
      );
      expect(job.request_id).toBe(done.request_id);
      expect(count(db, "SELECT count(*) AS n FROM audit WHERE event = 'approval.recovered'")).toBe(1);
      const recovered = peek(
        db,
        (d) => d.prepare("SELECT detail FROM audit WHERE event = 'approval.recovered'").get() as { detail: string },
      );
      expect(JSON.parse(recovered.detail)).toMatchObject({
        request_id: id,
        outcome: point === 'before-effect' ? 'never_started' : 'found',
      });

      // retries: the same key, no key, a new key — each a prompt replay of the one job
      for (const retry of [
        args,
        { ...args, idempotency_key: undefined },
        { ...args, idempotency_key: `crash-${point}-0002` },
      ]) {
        const t0 = Date.now();
        const r = await again.call('software_install', retry);
        expect(Date.now() - t0).toBeLessThan((WAIT_SECONDS + 1) * 1000);
        expect(r.isError, JSON.stringify(r)).toBeFalsy();
        expect(r._meta?.['itguard/replay']).toBeDefined();
        expect(jobOf(r)).toBe(job.id);
      }
      const st = await again.call('request_status', { request_id: id });
      expect(st.structuredContent).toMatchObject({ status: 'succeeded', job: { id: job.id } });
      expect(jobs(db)).toBe(1);
      await Promise.all([again.close(), other.close()]);
      const verify = runCli(['audit', 'verify', '--db', db, '--policy', policy]);
      expect(verify.code, verify.stdout + verify.stderr).toBe(0);
    }, 40_000);
  }
});
