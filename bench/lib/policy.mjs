/**
 * The policy the throughput benchmarks run under: the built-in demo policy (durability strict), with the
 * session budgets, the principal budgets' limits, the loop breakers and the ticket_create caps raised so that a
 * few seconds of load are not refused. Everything else stays as shipped: the principal budgets are still
 * reserved and settled on every call, caps reserved on every write, audit, idempotency. The PostgreSQL part
 * (pg-replicas.mjs, pg-roundtrips.mjs) runs the same policy with `store: { kind: postgres }`.
 */
import { DEMO_POLICY_YAML } from '../../dist/policy/demo.js';
import { parsePolicy } from '../../dist/policy/load.js';

const BENCH_TASK =
  'task: { max_calls: 100000000, max_minutes: 600, max_result_bytes: 100000000000, max_identical_calls: 100000000, max_consecutive_failures: 100000000 }\n';
const BENCH_BUDGETS = [
  'budgets:',
  '  - { name: fleet-calls-per-hour, window: hour, limit: 1000000000, alarm_at: 900000000 }',
  '  - { name: fleet-failures-per-hour, window: hour, measure: failures, limit: 1000000000, alarm_at: 900000000 }',
  '  - { name: user-calls-per-hour, window: hour, per: user, limit: 1000000000, alarm_at: 900000000 }',
  'loop: { tripped_tasks_per_hour: 1000000000 }',
].join('\n');
const benchTicketCaps = (perRequester = 1000000000) =>
  [
    '      - { name: tickets-per-day, window: day, limit: 1000000000 }',
    `      - { name: tickets-per-requester, window: hour, per: requester, limit: ${perRequester} }`,
  ].join('\n');
/** The PostgreSQL store (issue 20): its URL in ITGUARD_PG_URL, set in the server process's environment. */
const PG_STORE = 'store: { kind: postgres, url_env: ITGUARD_PG_URL }\n';

function replaceOnce(text, pattern, replacement, what) {
  const matches = text.match(
    new RegExp(pattern.source, pattern.flags.includes('g') ? pattern.flags : `${pattern.flags}g`),
  );
  if (!matches || matches.length !== 1) {
    throw new Error(
      `bench policy: expected exactly one ${what} in the demo policy, found ${matches?.length ?? 0}; update bench/lib/policy.mjs`,
    );
  }
  return text.replace(pattern, replacement);
}

/**
 * `store: 'postgres'` puts the state on the PostgreSQL server ITGUARD_PG_URL names; `perRequester` lowers the
 * per-requester ticket cap (the round-trip part uses it to measure a refused call).
 */
export function benchPolicyYaml({ store = 'sqlite', perRequester } = {}) {
  let y = DEMO_POLICY_YAML;
  y = replaceOnce(y, /^task:\n(?: {2}.*\n)+/m, BENCH_TASK, 'task block');
  y = replaceOnce(y, /^budgets:\n(?: {2}- .*\n)+loop: .*$/m, BENCH_BUDGETS, 'budgets and loop block');
  y = replaceOnce(
    y,
    /^ {6}- \{ name: tickets-per-day,.*\n {6}- \{ name: tickets-per-requester,.*$/m,
    benchTicketCaps(perRequester),
    'ticket_create caps block',
  );
  if (store === 'postgres') y = replaceOnce(y, /^version: 1\n/m, `version: 1\n${PG_STORE}`, 'version line');
  return y;
}

export function benchPolicy(opts = {}) {
  const p = parsePolicy(benchPolicyYaml(opts), 'bench policy');
  if (p.durability !== 'strict') throw new Error('bench policy: expected durability strict');
  return p;
}
