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
# A task is one conversation or job of the agent (DESIGN §3 step 4): the client or agent platform names it with
# _meta["io.itguard/task"] or the Itguard-Task header; else the session or stdio connection, else the OAuth user.
task:
  identify: [meta, session, user]
  idle_minutes: 30
  max_calls: 40
  max_minutes: 30
  max_result_bytes: 2000000
  max_identical_calls: 3
  max_consecutive_failures: 5
session: { max_per_principal: 64 }
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
# Every call counts, across tasks, processes and replicas. The fleet ceilings are about 3x the seed's peak hour
# (docs/policy.md has the arithmetic); one person's calls are bounded whatever task ids their agent invents.
budgets:
  - { name: fleet-calls-per-hour, window: hour, limit: 10000, alarm_at: 4000 }
  - { name: fleet-failures-per-hour, window: hour, measure: failures, limit: 2000, alarm_at: 500 }
  - { name: user-calls-per-hour, window: hour, per: user, limit: 200, alarm_at: 60 }
loop: { tripped_tasks_per_hour: 10 }   # the fleet breaker: trips the principal when 10 tasks tripped their own
backends:
  tickets:   { kind: embedded, project: IT, allowed_projects: [IT] }
  directory: { kind: embedded }
  deploy:    { kind: embedded }
  outbox:    { kind: embedded }   # or smtp: see docs/backends.md
demo: true
`;
