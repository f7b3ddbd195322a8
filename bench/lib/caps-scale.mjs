/**
 * Benchmark 5: the cost of a cap check as the audit grows from 0 to 1,000,000 rows. The database is opened by
 * itguard's openDb; audit rows are bulk-inserted with one INSERT … SELECT over a recursive CTE inside one
 * transaction per database (valid-looking columns: sequential seq, timestamps, events, trace ids, args JSON, hashes — the
 * chain is not meant to verify). At each size it times CapsStore.reserve + CapsStore.release of the demo
 * policy's ticket_create rules (a global day cap and a per-requester hour cap), the pair the caps guard does on
 * a refused or failed call, twice: with the policy's `durability: strict` (synchronous FULL: two fsynced
 * commits per pair) and with `fast` (synchronous NORMAL), which leaves the check's own SQL and JS cost.
 */
import { closeSync, fsyncSync, mkdtempSync, openSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DEMO_POLICY_YAML } from '../../dist/policy/demo.js';
import { parsePolicy } from '../../dist/policy/load.js';
import { CapsStore } from '../../dist/store/sqlite/caps-store.js';
import { openDb, setDurability } from '../../dist/store/sqlite/db.js';
import { REQUESTERS } from './workload.mjs';

const FILL = `
WITH RECURSIVE c(x) AS (SELECT @from UNION ALL SELECT x + 1 FROM c WHERE x < @to)
INSERT INTO audit (seq, ts, event, trace_id, actor, session_id, tool, args, args_sha256, outcome, code, detail, prev_hash, hash)
SELECT x,
       @t0 + x * 50,
       CASE x % 2 WHEN 1 THEN 'call.intent' ELSE 'call.outcome' END,
       lower(hex(randomblob(8))),
       'helpdesk-agent',
       'sess-' || (x / 40),
       'ticket_create',
       '{"description":"","priority":"medium","requester":"dkim","summary":"Laptop fan is loud #' || (x / 2) || '"}',
       lower(hex(randomblob(32))),
       CASE x % 2 WHEN 1 THEN NULL ELSE 'ok' END,
       NULL,
       '{"started_at":' || (@t0 + x * 50) || '}',
       lower(hex(randomblob(32))),
       lower(hex(randomblob(32)))
  FROM c`;

function timePairs(caps, rules, iterations) {
  const us = [];
  for (let i = 0; i < iterations; i++) {
    const requester = REQUESTERS[i % REQUESTERS.length];
    const demands = rules.map((rule) => ({ rule, scopeKey: rule.per === 'requester' ? requester : '*', amount: 1 }));
    const t = performance.now();
    const r = caps.reserve(demands, Date.now());
    if (!r.ok) throw new Error(`cap ${r.rule.name} refused during the benchmark`);
    caps.release(r.items);
    us.push((performance.now() - t) * 1000);
  }
  return us;
}

/**
 * A new database holding `rows` audit rows. The bulk insert runs with the journal off and synchronous OFF (it
 * only has to be fast), then the file is fsynced and put back in WAL mode, so the measurement that follows is
 * not sharing the disk with the write-back of the fill.
 */
function auditDb(dir, rows) {
  const file = join(dir, `caps-${rows}.db`);
  const db = openDb(file, { durability: 'strict' });
  if (rows > 0) {
    db.pragma('journal_mode = OFF');
    db.pragma('synchronous = OFF');
    db.transaction(() => db.prepare(FILL).run({ from: 1, to: rows, t0: Date.now() - 60 * 86400_000 }))();
    db.pragma('journal_mode = WAL');
    setDurability(db, 'strict');
    const fd = openSync(file, 'r');
    fsyncSync(fd);
    closeSync(fd);
  }
  const n = db.prepare('SELECT count(*) AS n FROM audit').get().n;
  if (n !== rows) throw new Error(`expected ${rows} audit rows, found ${n}`);
  return db;
}

/**
 * Returns, per audit size, the µs of each reserve+release pair under strict and fast durability. The sizes
 * are separate databases measured round-robin (size A, B, C, A, B, C, …) so that drift in the disk's fsync
 * latency during the run falls on every size alike.
 */
export async function capsScale({
  sizes = [0, 100_000, 1_000_000],
  rounds = 4,
  strictIterations = 100,
  fastIterations = 1000,
  progress = () => {},
} = {}) {
  const dir = mkdtempSync(join(tmpdir(), 'itguard-bench-caps-'));
  const dbs = [];
  try {
    const rules = parsePolicy(DEMO_POLICY_YAML).tools.ticket_create.caps;
    for (const size of sizes) {
      const s = performance.now();
      const db = auditDb(dir, size);
      dbs.push({ size, db, caps: new CapsStore(db, 'UTC'), strict: [], fast: [] });
      if (size)
        progress(
          `  audit filled with ${size.toLocaleString('en-US')} rows in ${((performance.now() - s) / 1000).toFixed(1)} s`,
        );
    }
    for (const d of dbs) {
      timePairs(d.caps, rules, 20); // warm the statements and the file cache
    }
    for (let r = 0; r < rounds; r++) {
      for (const d of dbs) {
        setDurability(d.db, 'strict');
        d.strict.push(...timePairs(d.caps, rules, strictIterations));
        setDurability(d.db, 'fast');
        d.fast.push(...timePairs(d.caps, rules, fastIterations));
        setDurability(d.db, 'strict');
      }
    }
    return dbs.map(({ size, strict, fast }) => ({ size, strict, fast }));
  } finally {
    for (const d of dbs) d.db.close();
    rmSync(dir, { recursive: true, force: true });
  }
}
