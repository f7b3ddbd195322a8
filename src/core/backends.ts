/**
 * The backends tools talk to, behind their ports (DESIGN §5 "Ports"), chosen by `backends.<name>.kind` in the
 * policy (src/backends/build.ts). The embedded adapters live in the itguard database; Jira, LDAP and SMTP
 * implement the same ports. Rules that must hold for every adapter are enforced in the tools, not here.
 */
import type { DeployPort } from './ports/deploy.js';
import type { DirectoryPort } from './ports/directory.js';
import type { FactorsPort } from './ports/factors.js';
import type { KbPort } from './ports/kb.js';
import type { OutboxPort } from './ports/outbox.js';
import type { ResetsPort } from './ports/resets.js';
import type { TicketsPort } from './ports/tickets.js';

export interface Backends {
  kb: KbPort;
  tickets: TicketsPort;
  directory: DirectoryPort;
  deploy: DeployPort;
  outbox: OutboxPort;
  factors: FactorsPort;
  /** The one-time reset link flow above the directory and outbox ports. */
  resets: ResetsPort;
  /** Ticket confinement (policy `backends.tickets`): new tickets go to `home`; only `allowed` projects are seen. */
  projects: { home: string; allowed: readonly string[] };
}
