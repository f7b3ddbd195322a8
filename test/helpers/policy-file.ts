import { demoPolicy, type CapInput, type PolicyBuilder } from './policy-builder.js';

/** The demo policy with ticket_create's caps set to `caps`, the task and fleet breaker bounds raised and no budgets. */
export function loadPolicy(caps: CapInput[]): PolicyBuilder {
  return demoPolicy()
    .caps('ticket_create', caps)
    .task({
      max_calls: 100000,
      max_minutes: 60,
      max_result_bytes: 100000000,
      max_identical_calls: 1000,
      max_consecutive_failures: 100000,
    })
    .budgets([])
    .loop({ tripped_tasks_per_hour: 100000 });
}

/** Writes `<dir>/policy.yaml`: `loadPolicy(caps)`, for load tests. */
export function loadPolicyFile(dir: string, caps: CapInput[]): string {
  return loadPolicy(caps).write(dir);
}
