/** The PostgreSQL store's answer to `/healthz` (app.ts `storeHealth`). */
import { type PgStore, toPgStoreError } from './connect.js';

export interface PgHealth {
  kind: 'postgres';
  ok: boolean;
  detail?: string;
}

/** `/healthz`: one round trip; the detail names the store by its redacted target, never its password. */
export async function pgHealth(pg: PgStore): Promise<PgHealth> {
  try {
    await pg.sql`SELECT 1 FROM killswitch WHERE id = 1`;
    return { kind: 'postgres', ok: true, detail: pg.target };
  } catch (e) {
    return { kind: 'postgres', ok: false, detail: toPgStoreError(pg.target, e).message };
  }
}
