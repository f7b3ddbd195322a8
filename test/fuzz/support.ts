/**
 * Shared by the fuzz suites: run counts and seed from the environment, the fuzz policy (bounds raised, every gate
 * automatic, so a run explores the tools rather than the loop breaker), and small checks on what comes back.
 */
import fc from 'fast-check';
import type { CallToolResult } from '@modelcontextprotocol/client';
import { writePolicy } from '../helpers/planner.js';
import { demoPolicy } from '../helpers/policy-builder.js';

/** Total generated cases across the suites; `npm test` runs a short fixed-seed run, `npm run fuzz` ≥ 100,000. */
export const FUZZ_RUNS = Number(process.env.FUZZ_RUNS ?? 1800);
export const FUZZ_SEED = Number(process.env.FUZZ_SEED ?? 20261202);
/** Arguments get five sixths of the runs, frames one sixth (at the default: 1500 and 300). */
export const ARG_RUNS = Math.max(4, Math.round((FUZZ_RUNS * 5) / 6));
export const FRAME_RUNS = Math.max(4, FUZZ_RUNS - ARG_RUNS);
/** One call or frame taking longer than this is a hang. */
export const CALL_TIMEOUT_MS = 15_000;

export const ENVELOPE = {
  'io.modelcontextprotocol/protocolVersion': '2026-07-28',
  'io.modelcontextprotocol/clientInfo': { name: 'fuzz', version: '1' },
  'io.modelcontextprotocol/clientCapabilities': {},
};

/** The demo policy with every per-session, per-principal and per-tool bound raised and no human gate. */
export function fuzzPolicy(dir: string): string {
  return writePolicy(
    dir,
    'fuzz',
    demoPolicy()
      .task({
        max_calls: 10000000,
        max_minutes: 1440,
        max_result_bytes: 100000000000,
        max_identical_calls: 10000000,
        max_consecutive_failures: 10000000,
      })
      .loop({ tripped_tasks_per_hour: 10000000 })
      .budgets([])
      .tool('password_reset', { tier: 'auto' })
      .tool('software_install', { tier: 'auto', self_service_tier: 'auto' })
      .edit((doc) => {
        // every cap of every tool: limit 10,000,000 and no alarm
        for (const t of Object.values(doc.tools ?? {}))
          if (t) t.caps = t.caps?.map(({ alarm_at: _, ...c }) => ({ ...c, limit: 10000000 }));
      }),
  );
}

export function withTimeout<T>(p: Promise<T>, what: string, ms = CALL_TIMEOUT_MS): Promise<T> {
  let t: NodeJS.Timeout | undefined;
  return Promise.race([
    p.finally(() => clearTimeout(t)),
    new Promise<never>((_, reject) => {
      t = setTimeout(() => reject(new Error(`hang: no answer in ${ms} ms to ${what}`)), ms);
    }),
  ]);
}

/** A result or a refusal with a code that is not INTERNAL; returns the code (or 'ok'). */
export function outcomeOf(r: CallToolResult): string {
  if (!Array.isArray(r.content)) throw new Error(`result without content: ${JSON.stringify(r).slice(0, 300)}`);
  if (!r.isError) return 'ok';
  const code = (r._meta?.['itguard/error'] as { code?: unknown } | undefined)?.code;
  if (typeof code !== 'string') throw new Error(`refusal without a code: ${JSON.stringify(r).slice(0, 500)}`);
  if (code === 'INTERNAL') throw new Error(`INTERNAL: ${JSON.stringify(r).slice(0, 800)}`);
  return code;
}

export const tally = (m: Map<string, number>, k: string) => m.set(k, (m.get(k) ?? 0) + 1);
export const show = (m: Map<string, number>) =>
  [...m]
    .sort((a, b) => b[1] - a[1])
    .map(([k, n]) => `${k}=${n}`)
    .join(' ');

/**
 * fc.assert with a short report: the counterexample cut to 3,000 characters (a generated value can be a 3,000-deep
 * nesting or a 4 MiB line), the cause's message, the seed and the path to replay it.
 */
export async function check<T>(prop: fc.IAsyncPropertyWithHooks<T>, runs: number, seed: number): Promise<void> {
  const out = await fc.check(prop, { numRuns: runs, seed, endOnFailure: true });
  if (!out.failed) return;
  const example = JSON.stringify(out.counterexample)?.slice(0, 3000);
  const cause = out.errorInstance instanceof Error ? out.errorInstance.message : String(out.errorInstance);
  throw new Error(
    `property failed after ${out.numRuns} runs (seed ${out.seed}, path ${out.counterexamplePath}):\n${cause.slice(0, 6000)}\ncounterexample: ${example}`,
  );
}
