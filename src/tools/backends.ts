/**
 * The backends tools talk to, behind their ports (DESIGN §5 "Ports"), chosen by `backends.<name>.kind` in the
 * policy (src/backends/build.ts). The embedded adapters live in the itguard database; Jira, LDAP and SMTP
 * implement the same ports. Rules that must hold for every adapter are enforced in the tools, not here.
 */
import type { FactorsPort } from './factors/backend.js';
import type { DirectoryPort } from './directory/backend.js';
import type { KbPort } from './kb/backend.js';
import type { OutboxPort } from './outbox/backend.js';
import type { ResetFlow } from './password/reset-flow.js';
import type { DeployPort } from './software/backend.js';
import type { TicketsPort } from './tickets/backend.js';

export interface Backends {
  kb: KbPort;
  tickets: TicketsPort;
  directory: DirectoryPort;
  deploy: DeployPort;
  outbox: OutboxPort;
  factors: FactorsPort;
  /** The one-time reset link flow above the directory and outbox ports. */
  resets: ResetFlow;
  /** Ticket confinement (policy `backends.tickets`): new tickets go to `home`; only `allowed` projects are seen. */
  projects: { home: string; allowed: readonly string[] };
}
