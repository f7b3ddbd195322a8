/**
 * The policy's words that a tool definition and every layer name (DESIGN §8): the tool names, the scopes, the
 * tiers, and one tool's settings (`ToolPolicy`) as the policy file is read into them (src/policy/schema.ts).
 */

export const TOOL_NAMES = [
  'kb_search',
  'kb_get_article',
  'ticket_search',
  'ticket_get',
  'ticket_create',
  'ticket_comment',
  'password_reset',
  'software_catalog',
  'software_install',
  'request_status',
  'guard_status',
] as const;
export type ToolName = (typeof TOOL_NAMES)[number];

export const SCOPES = [
  'kb:read',
  'tickets:read',
  'tickets:write',
  'password:reset',
  'software:read',
  'software:install',
  'approvals:decide',
  'audit:read',
] as const;
export type Scope = (typeof SCOPES)[number];

export const TIERS = ['auto', 'confirm', 'mfa', 'approval'] as const;
export type Tier = (typeof TIERS)[number];

export interface CapRule {
  tool: ToolName;
  name: string;
  window: 'hour' | 'day';
  per: 'global' | 'principal' | 'user' | 'task' | 'target' | 'requester';
  measure: 'calls' | 'cost_usd';
  limit: number;
  alarmAt: number | undefined;
}

export interface ToolPolicy {
  tier: Tier | undefined;
  selfServiceTier: Tier | undefined;
  dedupeWindowMs: number;
  caps: readonly CapRule[];
  denyTargetGroups: readonly string[];
  mode: 'live' | 'shadow';
  enabled: boolean;
  timeoutMs: number;
  maxIdenticalCalls: number;
  maxConsecutiveFailures: number;
}
