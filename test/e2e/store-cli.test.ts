/**
 * `itguard store migrate | copy` and the store in `policy check --probe`, run as the built CLI (npm run build first)
 * against a real PostgreSQL 15 (test/helpers/pg.ts): migrate applies each step once; copy moves a SQLite deployment
 * that has real data (the demo seed, calls through the pipeline, an approval, a kill and resume, a token) into an
 * empty store, where the audit chain verifies with the same head and every table has the same rows; a non-empty
 * target is refused; the probe reports a reachable and an unreachable server.
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openApp } from '../../src/app.js';
import { DEMO_POLICY_YAML } from '../../src/policy/demo.js';
import { parsePolicy } from '../../src/policy/load.js';
import { connectPg, type PgStore } from '../../src/store/postgres/connect.js';
import { COPIED_TABLES } from '../../src/store/postgres/copy.js';
import { pgKey, PgUnitRunner } from '../../src/store/postgres/runner.js';
import { probeStore } from '../../src/store/probe.js';
import { KEY_FINGERPRINT, verifyChain, type AuditRow } from '../../src/store/sqlite/audit-store.js';
import { migrations as sqliteMigrations } from '../../src/store/sqlite/migrations.js';
import { runCliAsync } from '../helpers/peers.js';
import { connect, policyWith, silent, tempDir } from '../helpers/harness.js';
import { type Pg, startPg } from '../helpers/pg.js';

let pg: Pg;
let tmp: ReturnType<typeof tempDir>;
const open: PgStore[] = [];
let dbs = 0;

beforeAll(async () => {
  pg = await startPg();
  tmp = tempDir();
}, 60_000);

afterAll(async () => {
  await Promise.all(open.map((s) => s.close()));
  await pg?.stop();
  tmp?.cleanup();
});

async function freshDb(): Promise<string> {
  return pg.createDatabase(`storecli_${++dbs}`);
}

async function store(url: string): Promise<PgStore> {
  const s = await connectPg(url);
  open.push(s);
  return s;
}

const cli = (args: string[], env: Record<string, string> = {}) => runCliAsync(args, env, 60_000);
const json = (stdout: string) => JSON.parse(stdout) as Record<string, unknown>;

/** The policy schema takes `store:` once the lead's change lands; until then a policy cannot name PostgreSQL. */
const schemaTakesStore = (() => {
  try {
    parsePolicy(`${DEMO_POLICY_YAML}\nstore: { kind: postgres, url_env: ITGUARD_PG_URL }\n`, 'probe');
    return true;
  } catch {
    return false;
  }
})();

function pgPolicyFile(name: string, urlEnv = 'ITGUARD_PG_URL'): string {
  const f = join(tmp.dir, name);
  writeFileSync(f, `${DEMO_POLICY_YAML}\nstore: { kind: postgres, url_env: ${urlEnv} }\n`);
  return f;
}

describe('itguard store migrate', () => {
  it('applies the numbered migrations once: a second run applies nothing and reports the same version', async () => {
    const url = await freshDb();
    const first = await cli(['store', 'migrate', '--to', 'postgres', '--json'], { ITGUARD_PG_URL: url });
    expect(first.code, first.stderr).toBe(0);
    const a = json(first.stdout);
    expect(a).toMatchObject({ ok: true, store: { kind: 'postgres', server_version: pg.version } });
    expect((a.applied as { version: number }[]).map((x) => x.version)).toEqual([1, 2]);
    expect(a.schema_version).toBe(a.latest_version);

    const second = await cli(['store', 'migrate', '--to', 'postgres'], { ITGUARD_PG_URL: url });
    expect(second.code, second.stderr).toBe(0);
    expect(second.stdout).toMatch(/nothing to apply/);
    expect(second.stdout).toMatch(new RegExp(`schema version ${String(a.schema_version)} `));
    const s = await store(url);
    const [n] = await s.sql<{ n: number }[]>`SELECT count(*)::INTEGER AS n FROM schema_migrations`;
    expect(n!.n).toBe(a.schema_version);
  });

  it('on SQLite opens the file, which migrates it, and reports its user_version', async () => {
    const db = join(tmp.dir, 'migrate.db');
    const first = await cli(['store', 'migrate', '--db', db, '--json']);
    expect(first.code, first.stderr).toBe(0);
    expect(json(first.stdout)).toMatchObject({
      ok: true,
      store: { kind: 'sqlite', target: db },
      schema_version: sqliteMigrations.length,
    });
    expect((json(first.stdout).applied as unknown[]).length).toBe(sqliteMigrations.length);
    const again = await cli(['store', 'migrate', '--db', db]);
    expect(again.stdout).toMatch(/nothing to apply/);
    expect(again.stdout).toMatch(new RegExp(`user_version\\) ${sqliteMigrations.length} `));
  });

  it('a PostgreSQL store that cannot be reached, or no URL, is a config error (exit 2, one sentence)', async () => {
    const down = await cli(['store', 'migrate', '--to', 'postgres', '--json'], {
      ITGUARD_PG_URL: 'postgres://itguard:s3cret-pw@127.0.0.1:1/nothing',
    });
    expect(down.code).toBe(2);
    expect(json(down.stdout)).toMatchObject({ ok: false, error: { code: 'CONFIG' } });
    expect(down.stderr).toMatch(/cannot be reached/);
    expect(down.stdout + down.stderr).not.toContain('s3cret-pw');
    const unset = await cli(['store', 'migrate', '--to', 'postgres'], { ITGUARD_PG_URL: '' });
    expect(unset.code).toBe(2);
    expect(unset.stderr).toMatch(/ITGUARD_PG_URL is not set/);
    const bad = await cli(['store', 'migrate', '--to', 'mysql']);
    expect(bad.code).toBe(2);
  });

  it.runIf(schemaTakesStore)('without --to migrates the PostgreSQL store the policy names', async () => {
    const url = await freshDb();
    const r = await cli(['store', 'migrate', '--policy', pgPolicyFile('migrate-pg.yaml', 'MY_PG'), '--json'], {
      MY_PG: url,
    });
    expect(r.code, r.stderr).toBe(0);
    expect(json(r.stdout)).toMatchObject({ ok: true, store: { kind: 'postgres' } });
  });
});

/** A SQLite deployment with real data: the demo seed, calls through the pipeline, a kill and a resume, a token. */
async function deployment(file: string): Promise<void> {
  // A gate that waits on a human gives up at once: the request stays pending (an approvals row to copy).
  const policy = policyWith((y) => y.replace(/approvals: \{ wait_seconds: \d+/, 'approvals: { wait_seconds: 1'));
  const app = openApp({ dbPath: file, policy, log: silent });
  try {
    const c = await connect(app);
    await c.call('kb_search', { query: 'vpn' });
    await c.call('kb_get_article', { id: 'KB-1001' });
    for (let i = 0; i < 3; i++)
      await c.call('ticket_create', { summary: `printer jam ${i}`, requester: 'jdoe', reason: 'store copy test' });
    const t = await c.call('ticket_search', { text: 'printer', requester: 'jdoe' });
    const key = /([A-Z]+-\d+)/.exec(JSON.stringify(t.structuredContent ?? t.content))?.[1];
    if (key) await c.call('ticket_comment', { key, body: 'Cleared the jam.', reason: 'store copy test' });
    await c.call('software_catalog', {});
    await c.call('software_install', { user: 'jdoe', package: 'microsoft-project', reason: 'planning' });
    await c.call('password_reset', { user: 'jdoe', reason: 'locked out after holiday' });
    await c.call('no_such_tool', {});
    await c.close();
  } finally {
    app.close();
  }
  for (const args of [
    ['kill', '--reason', 'copy test drill'],
    ['resume', '--reason', 'copy test over'],
    ['token', 'create', '--principal', 'helpdesk-agent', '--label', 'copy'],
  ]) {
    const r = await cli([...args, '--db', file]);
    expect(r.code, r.stderr).toBe(0);
  }
}

function sqliteCounts(file: string): Map<string, number> {
  const db = new Database(file, { readonly: true });
  try {
    return new Map(
      COPIED_TABLES.map((t) => [t, (db.prepare(`SELECT count(*) AS n FROM ${t}`).get() as { n: number }).n]),
    );
  } finally {
    db.close();
  }
}

describe('itguard store copy --from sqlite:FILE --to postgres', () => {
  it('moves every table; the chain verifies on PostgreSQL with the same head; keys map through pgKey', async () => {
    const file = join(tmp.dir, 'deployment.db');
    await deployment(file);
    const counts = sqliteCounts(file);
    for (const t of ['audit', 'tokens', 'tasks', 'kb_articles', 'dir_users', 'tickets', 'approvals', 'meta'])
      expect(counts.get(t), t).toBeGreaterThan(0);
    const src = new Database(file, { readonly: true });
    const srcHead = src.prepare('SELECT seq, hash FROM audit ORDER BY seq DESC LIMIT 1').get() as {
      seq: number;
      hash: string;
    };
    const srcTasks = src.prepare('SELECT task_key FROM tasks ORDER BY task_key').pluck().all() as string[];
    const srcKs = src.prepare('SELECT * FROM killswitch').get();
    src.close();

    const url = await freshDb();
    const r = await cli(['store', 'copy', '--from', `sqlite:${file}`, '--to', 'postgres', '--json'], {
      ITGUARD_PG_URL: url,
    });
    expect(r.code, r.stderr).toBe(0);
    const doc = json(r.stdout);
    expect(doc).toMatchObject({ ok: true, from: { kind: 'sqlite', target: file }, to: { kind: 'postgres' } });
    expect(doc.audit_head).toEqual(srcHead);
    const reported = new Map((doc.tables as { table: string; rows: number }[]).map((t) => [t.table, t.rows]));
    expect(reported).toEqual(counts);

    const s = await store(url);
    for (const t of COPIED_TABLES) {
      const [n] = await s.sql.unsafe<{ n: number }[]>(`SELECT count(*)::INTEGER AS n FROM ${t}`);
      expect(n!.n, t).toBe(counts.get(t));
    }
    // The chain: the head row is the copied head, and recomputing every link from PostgreSQL's rows verifies.
    const [head] = await s.sql<{ seq: number; hash: string }[]>`SELECT seq, hash FROM audit_head WHERE id = 1`;
    expect(head).toEqual(srcHead);
    const rows = await s.sql<AuditRow[]>`SELECT * FROM audit ORDER BY seq`;
    const [fp] = await s.sql<{ value: string }[]>`SELECT value FROM meta WHERE key = ${KEY_FINGERPRINT}`;
    expect(verifyChain(rows, undefined, fp?.value, { expectHead: srcHead })).toEqual({
      ok: true,
      count: srcHead.seq,
      head: srcHead,
    });
    // Still append-only there; the PostgreSQL adapter accepts the chain (the key check) and continues its head.
    await expect(s.sql`DELETE FROM audit WHERE seq = 1`).rejects.toThrow(/append-only/);
    const runner = new PgUnitRunner(s, { key: undefined });
    await runner.record({ event: 'test.after_copy', actor: 'test' });
    expect((await runner.head()).seq).toBe(srcHead.seq + 1);
    expect(await runner.verify({ expectHead: srcHead })).toMatchObject({ ok: true, count: srcHead.seq + 1 });
    // Task keys as the PostgreSQL adapter keys them; the kill switch as it was left.
    const pgTasks = await s.sql<{ task_key: string }[]>`SELECT task_key FROM tasks`;
    expect(pgTasks.map((x) => x.task_key).sort()).toEqual(srcTasks.map(pgKey).sort());
    expect(srcTasks.some((k) => k.includes('\u0000'))).toBe(true);
    const [ks] = await s.sql`SELECT * FROM killswitch`;
    expect(ks).toEqual(srcKs);
    // Derived data: the KB's search vector and spelling vocabulary; identities continue past the copied ids.
    const [kb] = await s.sql<{ n: number }[]>`
      SELECT count(*)::INTEGER AS n FROM kb_articles WHERE search @@ plainto_tsquery('english', 'vpn')`;
    expect(kb!.n).toBeGreaterThan(0);
    const [vocab] = await s.sql<{ n: number }[]>`SELECT count(*)::INTEGER AS n FROM kb_words_vocab`;
    expect(vocab!.n).toBeGreaterThan(0);
    const [o] = await s.sql<{ id: number }[]>`
      INSERT INTO outbox (username, channel, address, subject, body, created_at)
      VALUES ('x', 'email', 'x@example.com', 's', 'b', 0) RETURNING id`;
    const [maxOutbox] = await s.sql<
      { m: number }[]
    >`SELECT coalesce(max(id), 0)::BIGINT AS m FROM outbox WHERE username <> 'x'`;
    expect(o!.id).toBeGreaterThan(maxOutbox!.m);

    // The copied store is not empty any more: a second copy is refused and changes nothing.
    const again = await cli(['store', 'copy', '--from', `sqlite:${file}`, '--to', 'postgres', '--json'], {
      ITGUARD_PG_URL: url,
    });
    expect(again.code).toBe(2);
    expect(json(again.stdout)).toMatchObject({ ok: false, error: { code: 'REFUSED' } });
    expect(again.stderr).toMatch(/is not empty \(audit \(\d+ records\)/);
    const [after] = await s.sql<{ seq: number }[]>`SELECT seq FROM audit_head WHERE id = 1`;
    expect(after!.seq).toBe(srcHead.seq + 1);
  }, 120_000);

  it('refuses a target with guard state but no audit records (a token), and names what it holds', async () => {
    const file = join(tmp.dir, 'small.db');
    expect((await cli(['store', 'migrate', '--db', file])).code).toBe(0);
    const url = await freshDb();
    expect((await cli(['store', 'migrate', '--to', 'postgres'], { ITGUARD_PG_URL: url })).code).toBe(0);
    const s = await store(url);
    await s.sql`INSERT INTO tokens (id, principal, hash, created_at, created_by) VALUES ('t1', 'p', 'h', 0, 'test')`;
    const r = await cli(['store', 'copy', '--from', `sqlite:${file}`, '--to', 'postgres'], { ITGUARD_PG_URL: url });
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/not empty \(tokens \(1 rows\)\)/);
    const [m] = await s.sql<{ n: number }[]>`SELECT count(*)::INTEGER AS n FROM meta`;
    expect(m!.n).toBe(0);
  });

  it('usage: --from sqlite:FILE and --to postgres are required; a missing file is exit 2', async () => {
    expect((await cli(['store', 'copy', '--to', 'postgres'])).code).toBe(2);
    expect((await cli(['store', 'copy', '--from', 'sqlite:/x.db'])).code).toBe(2);
    const missing = await cli(['store', 'copy', '--from', `sqlite:${join(tmp.dir, 'nope.db')}`, '--to', 'postgres']);
    expect(missing.code).toBe(2);
    expect(missing.stderr).toMatch(/does not exist/);
  });
});

describe('policy check --probe: the store', () => {
  it('SQLite: the file and its user_version; a file that is not itguard’s fails the probe (exit 1)', async () => {
    const db = join(tmp.dir, 'probe.db');
    expect((await cli(['store', 'migrate', '--db', db])).code).toBe(0);
    const r = await cli(['policy', 'check', '--probe', '--db', db, '--json']);
    expect(r.code, r.stderr).toBe(0);
    expect(json(r.stdout).store).toMatchObject({
      kind: 'sqlite',
      target: db,
      ok: true,
      reachable: true,
      schema_version: sqliteMigrations.length,
      latest_version: sqliteMigrations.length,
    });
    const foreign = join(tmp.dir, 'foreign.db');
    const f = new Database(foreign);
    f.exec('CREATE TABLE other (x)');
    f.pragma('user_version = 3');
    f.close();
    const bad = await cli(['policy', 'check', '--probe', '--db', foreign]);
    expect(bad.code).toBe(1);
    expect(bad.stdout).toMatch(/FAIL store \(sqlite\): .*not an itguard database/);
    expect(bad.stderr).toMatch(/probe failed: store/);
  });

  it('PostgreSQL reachable: server and schema version against the latest; unreachable: ok false', async () => {
    const url = await freshDb();
    process.env.STORECLI_PROBE_URL = url;
    const before = await probeStore({ kind: 'postgres', urlEnv: 'STORECLI_PROBE_URL' }, '');
    expect(before).toMatchObject({ kind: 'postgres', ok: true, reachable: true, serverVersion: pg.version });
    expect(before.schemaVersion).toBe(0);
    expect(before.detail).toMatch(/migration\(s\) to apply/);
    expect((await cli(['store', 'migrate', '--to', 'postgres'], { ITGUARD_PG_URL: url })).code).toBe(0);
    const after = await probeStore({ kind: 'postgres', urlEnv: 'STORECLI_PROBE_URL' }, '');
    expect(after).toMatchObject({ ok: true, schemaVersion: after.latestVersion });
    expect(after.detail).toMatch(/up to date/);
    process.env.STORECLI_PROBE_URL = 'postgres://itguard:pw-not-shown@127.0.0.1:1/x';
    const down = await probeStore({ kind: 'postgres', urlEnv: 'STORECLI_PROBE_URL' }, '');
    expect(down).toMatchObject({ ok: false, reachable: false });
    expect(JSON.stringify(down)).not.toContain('pw-not-shown');
    delete process.env.STORECLI_PROBE_URL;
  });

  it.runIf(schemaTakesStore)(
    'through the CLI on a policy naming PostgreSQL: exit 0 reachable, 1 unreachable',
    async () => {
      const url = await freshDb();
      const file = pgPolicyFile('probe-pg.yaml');
      expect((await cli(['store', 'migrate', '--policy', file], { ITGUARD_PG_URL: url })).code).toBe(0);
      const ok = await cli(['policy', 'check', file, '--probe', '--json'], { ITGUARD_PG_URL: url });
      expect(ok.code, ok.stderr).toBe(0);
      expect(json(ok.stdout).store).toMatchObject({ kind: 'postgres', ok: true, server_version: pg.version });
      const down = await cli(['policy', 'check', file, '--probe'], {
        ITGUARD_PG_URL: 'postgres://itguard@127.0.0.1:1/x',
      });
      expect(down.code).toBe(1);
      expect(down.stdout).toMatch(/FAIL store \(postgres\)/);
    },
  );
});
