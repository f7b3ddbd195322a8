import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { DEMO_POLICY_YAML } from '../../src/policy/demo.js';

/** Writes the demo policy with ticket_create's caps replaced and the session and principal bounds raised, for load tests. */
export function loadPolicyFile(dir: string, capsYaml: string): string {
  const yaml = DEMO_POLICY_YAML.replace(
    / {2}ticket_create:\n {4}tier: auto\n {4}dedupe_window: 15m\n {4}caps:\n( {6}- .*\n)+/,
    `  ticket_create:\n    tier: auto\n    dedupe_window: 15m\n    caps:\n${capsYaml}`,
  )
    .replace(
      /^task:\n( {2}.*\n)+/m,
      'task: { max_calls: 100000, max_minutes: 60, max_result_bytes: 100000000, max_identical_calls: 1000, max_consecutive_failures: 100000 }\n',
    )
    .replace(/budgets:\n( {2}- .*\n)+/, 'budgets: []\n')
    .replace(/loop: \{[^}]*\}/, 'loop: { tripped_tasks_per_hour: 100000 }');
  const file = join(dir, 'policy.yaml');
  writeFileSync(file, yaml);
  return file;
}
