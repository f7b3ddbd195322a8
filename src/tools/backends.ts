/** The backends tools talk to. The embedded ones live in the itguard database; others (Jira, LDAP…) would implement the same interfaces. */
import type { DirectoryBackend } from './directory/embedded.js';
import type { KbBackend } from './kb/embedded.js';
import type { TicketsBackend } from './tickets/embedded.js';
import type { DeployBackend } from './software/embedded.js';

export interface Backends {
  kb: KbBackend;
  tickets: TicketsBackend;
  directory: DirectoryBackend;
  deploy: DeployBackend;
}
