/** The built-in demo policy, used when neither --policy, ITGUARD_POLICY nor ./itguard.yaml is given. */
export const DEMO_POLICY_YAML = `# itguard built-in demo policy (DESIGN §8)
version: 1
timezone: UTC
durability: strict
stdio_principal: helpdesk-agent
principals:
  helpdesk-agent: { scopes: [kb:read, tickets:read, tickets:write, password:reset, software:read, software:install] }
  kb-reader:      { scopes: [kb:read, tickets:read] }
  it-approver:    { scopes: [approvals:decide, audit:read] }
session: { max_calls: 40, max_minutes: 30, max_result_bytes: 2000000, max_identical_calls: 3, max_consecutive_failures: 5 }
mfa: { allow_form_code: true, out_of_band: true }
approvals: { wait_seconds: 30, expire_hours: 24 }
tools:
  ticket_create:
    tier: auto
    dedupe_window: 15m
    caps:
      - { name: tickets-per-day, window: day, limit: 5000, alarm_at: 3000 }
      - { name: tickets-per-requester, window: hour, per: requester, limit: 5 }
  password_reset:
    tier: mfa
    deny_target_groups: [admins, service-accounts]
    caps:
      - { name: resets-per-day, window: day, limit: 200, alarm_at: 50 }
      - { name: resets-per-user, window: day, per: target, limit: 2 }
  software_install:
    tier: approval
    self_service_tier: confirm
    caps:
      - { name: installs-per-day, window: day, limit: 50, alarm_at: 20 }
      - { name: license-spend-per-day, window: day, measure: cost_usd, limit: 2000, alarm_at: 400 }
# Every call counts, across sessions and processes. A typical helpdesk task is 5-15 calls: alarm near 10x that,
# stop near 50x (DESIGN §8's rule of thumb).
budgets:
  - { name: calls-per-hour, window: hour, limit: 600, alarm_at: 120 }
  - { name: failures-per-hour, window: hour, measure: failures, limit: 60, alarm_at: 12 }
  - { name: result-bytes-per-day, window: day, measure: result_bytes, limit: 50000000, alarm_at: 10000000 }
loop: { identical_per_hour: 20, failures_in_a_row: 10 }
backends:
  tickets:   { kind: embedded, project: IT, allowed_projects: [IT] }
  directory: { kind: embedded }
  deploy:    { kind: embedded }
  outbox:    { kind: embedded }   # or smtp: see docs/backends.md
demo: true
`;
