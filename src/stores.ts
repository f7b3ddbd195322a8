/** The store a process uses, whichever adapter: what app.ts and app-postgres.ts build and the CLI's verbs use. */
import type { Backends } from './core/backends.js';
import type { Embedded } from './backends/embedded.js';
import type { AuditPort, Store } from './store/ports/index.js';

/** Whether the store answers (`/healthz`, `policy check --probe`): never a URL with a password, never a secret. */
export interface StoreHealth {
  kind: 'sqlite' | 'postgres';
  ok: boolean;
  detail?: string;
}

/** The store (either adapter), its unit runner and the backends over it: what the CLI's admin verbs need. */
export interface Stores {
  kind: 'sqlite' | 'postgres';
  /** Commits units of work: every write of guard state outside a call's own units goes through it. */
  audit: AuditPort;
  /** Every store port (store/ports/). */
  store: Store;
  backends: Backends;
  /** The embedded adapters (demo data, `kb import`, the CLI's lists), whatever the policy's backends are. */
  embedded: Embedded;
  health(): Promise<StoreHealth>;
  /** Closes the database (the PostgreSQL pool after its queries end). */
  close(): Promise<void>;
}
