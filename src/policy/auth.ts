/**
 * The policy's `auth:` block (DESIGN §6 "OAuth 2.1 resource server", §8): which identity providers' JWT access
 * tokens /mcp accepts, for which resource, and how a token's claims pick a principal of the policy.
 *
 *   auth:
 *     issuers: [https://idp.example.com/oauth2/default]   # exact `iss` values; http:// only for loopback hosts
 *     audience: https://itguard.example.com/mcp          # this server's resource URL, the token's `aud`
 *     principal_claim: itguard_principal                 # or principals_from_groups (exactly one of the two)
 *     principals_from_groups: { it-agents: helpdesk-agent, it-approvers: it-approver }   # first match wins
 *     groups_claim: groups                               # default groups
 *     required_scopes: [itguard]                         # optional; missing → 403 insufficient_scope
 *     static_tokens: true                                # default true: `itguard token create` tokens still work
 */
import { z } from 'zod';
import { identityUrlProblem } from '../loopback.js';

export interface AuthPolicy {
  /** Exact `iss` values accepted, in the order written (also the PRM document's authorization_servers). */
  issuers: readonly string[];
  /** This server's resource URL: the `aud` every token must carry, and the PRM document's `resource`. */
  audience: string;
  principalClaim: string | undefined;
  /** In the order written: the first group the token carries picks the principal. */
  principalsFromGroups: readonly { group: string; principal: string }[] | undefined;
  groupsClaim: string;
  requiredScopes: readonly string[];
  staticTokens: boolean;
}

const identityUrl = z
  .string({ error: 'expected a URL' })
  .max(2048)
  .check((ctx) => {
    const problem = identityUrlProblem(ctx.value);
    if (problem) ctx.issues.push({ code: 'custom', message: problem, input: ctx.value });
  });

/** A JWT claim name, used as written (namespaced claims such as https://example.com/role contain dots and slashes). */
const claimName = z
  .string()
  .min(1)
  .max(256)
  .refine((s) => ![...s].some((c) => c.charCodeAt(0) < 0x20 || c.charCodeAt(0) === 0x7f), {
    error: 'must not contain control characters',
  });

/** RFC 6749 §3.3 scope-token: printable ASCII without space, `"` or `\`. */
const scopeToken = z.string().regex(/^[\x21\x23-\x5B\x5D-\x7E]{1,128}$/, {
  error: 'expected a scope like itguard or api://itguard/mcp (no spaces or quotes)',
});

const isIndexKey = (k: string): boolean => /^(?:0|[1-9]\d{0,9})$/.test(k);

/**
 * Keys of principals_from_groups: their order is the match order, so keys JavaScript would reorder (array-index
 * names like `1000` come first, whatever the file says) are refused rather than silently matched out of order.
 */
function checkGroupKeys(v: unknown, ctx: z.RefinementCtx): unknown {
  if (!v || typeof v !== 'object' || Array.isArray(v)) return v;
  for (const k of Object.keys(v)) {
    if (isIndexKey(k))
      ctx.addIssue({
        code: 'custom',
        path: [k],
        message: 'a group named by a plain number cannot keep its place in the match order; map the group by its name',
        input: k,
      });
  }
  return v;
}

/** `principals` is the policy's principals mapping: values of principals_from_groups are checked against it later. */
export const authSchema = (principalKeys: (v: unknown, ctx: z.RefinementCtx) => unknown, principalName: z.ZodString) =>
  z
    .strictObject({
      issuers: z.array(identityUrl).min(1).max(16),
      audience: identityUrl,
      principal_claim: claimName.optional(),
      principals_from_groups: z
        .preprocess(
          (v, ctx) => checkGroupKeys(principalKeys(v, ctx), ctx),
          z.record(z.string().min(1).max(256), principalName),
        )
        .optional(),
      groups_claim: claimName.default('groups'),
      required_scopes: z.array(scopeToken).max(64).default([]),
      static_tokens: z.boolean().default(true),
    })
    .check((ctx) => {
      const a = ctx.value;
      if ((a.principal_claim === undefined) === (a.principals_from_groups === undefined))
        ctx.issues.push({
          code: 'custom',
          path: ['principal_claim'],
          message: 'give exactly one of principal_claim and principals_from_groups',
          input: a.principal_claim,
        });
      if (a.principals_from_groups && Object.keys(a.principals_from_groups).length === 0)
        ctx.issues.push({
          code: 'custom',
          path: ['principals_from_groups'],
          message: 'must map at least one group',
          input: a.principals_from_groups,
        });
      a.issuers.forEach((iss, i) => {
        if (a.issuers.indexOf(iss) !== i)
          ctx.issues.push({ code: 'custom', path: ['issuers', i], message: `duplicate issuer ${iss}`, input: iss });
      });
    });

type ParsedAuth = z.output<ReturnType<typeof authSchema>>;

/** The cross-field rule the auth block cannot check alone: every mapped principal exists. */
export function checkAuthPrincipals(
  a: ParsedAuth | undefined,
  principals: Record<string, unknown>,
  push: (issue: { code: 'custom'; path: PropertyKey[]; message: string; input: unknown }) => void,
): void {
  for (const [group, principal] of Object.entries(a?.principals_from_groups ?? {})) {
    if (!Object.hasOwn(principals, principal))
      push({
        code: 'custom',
        path: ['auth', 'principals_from_groups', group],
        message: 'must name a principal under principals',
        input: principal,
      });
  }
}

export function toAuthPolicy(a: ParsedAuth | undefined): AuthPolicy | undefined {
  if (!a) return undefined;
  return {
    issuers: a.issuers,
    audience: a.audience,
    principalClaim: a.principal_claim,
    principalsFromGroups: a.principals_from_groups
      ? Object.entries(a.principals_from_groups).map(([group, principal]) => ({ group, principal }))
      : undefined,
    groupsClaim: a.groups_claim,
    requiredScopes: a.required_scopes,
    staticTokens: a.static_tokens,
  };
}
