/**
 * Where the PostgreSQL database becomes the limit for more replicas than this machine holds: a model from the
 * costs measured in the same run (pg-replicas.mjs under load, pg-roundtrips.mjs at idle). Two ceilings, the lower
 * one decides:
 *
 *  - Database CPU: PostgreSQL's own CPU per call (its processes' CPU time over the measured window, divided by the
 *    calls; from the 1-replica rows, where it is least inflated by lock waits and context switches) — one core of
 *    this CPU model serves 1e6 / that calls/s, k cores k times as many (assumed linear: short transactions on
 *    different rows, which PostgreSQL spreads over cores well).
 *  - The audit chain's head: every unit that appends audit records locks the one `audit_head` row from its
 *    `SELECT … FOR UPDATE` to the end of its COMMIT, whose WAL flush it waits for while holding the lock, so such
 *    units run one at a time across all replicas whatever the cores: at most 1000 / (head-held ms per call) calls/s.
 *    Measured at idle over loopback; over a network every hold grows by about two round trips (the row goes back to
 *    the replica, the INSERT and then the COMMIT come over), so the ceiling is also given at an assumed RTT.
 *
 *    Under load the hold is longer: the holder waits for its replica's next statement while that process serves
 *    other calls, so the units queue on the row. When the replica rows show most connections waiting on a lock, the
 *    head was the limit there, and the best rate measured is the head's ceiling under that load ("as loaded").
 *
 * Replicas held = the ceiling / one replica's throughput: as measured here (1 replica sharing this machine's cores
 * with PostgreSQL and the load) and as one replica on a core of its own would give (1e6 / its CPU per call).
 */
export const MODEL_CORES = [1, 2, 4, 8, 16];
export const MODEL_RTT_MS = 0.5;

export function pgModel(pg, rt, cores = MODEL_CORES, rttMs = MODEL_RTT_MS) {
  const out = { cores, rttMs };
  for (const key of ['write', 'read']) {
    const t = pg?.[key];
    const kind = rt?.kinds?.[key];
    if (!t || !kind) continue;
    const one = t.rows[0];
    const dbUs = one.pgUsPerCall;
    const replicaUs = one.cpuUsPerCall;
    const perReplica = one.rate;
    const replicaCore = 1e6 / replicaUs;
    const dbPerCore = 1e6 / dbUs;
    const headMs = kind.headMsPerCall;
    const chain = 1000 / headMs;
    const chainRtt = 1000 / (headMs + kind.auditUnitsPerCall * 2 * rttMs);
    // Lock-bound rows: at least half the connections in use were waiting on a lock.
    const bound = t.rows.filter(
      (x) => x.conns && x.conns.lock >= 0.5 * (x.conns.running + x.conns.lock + x.conns.io + x.conns.idle_in_tx),
    );
    const chainLoaded = bound.length ? Math.max(...bound.map((x) => x.rate)) : Infinity;
    out[key] = {
      tool: t.tool,
      dbUs,
      dbUsAll: t.rows.map((x) => x.pgUsPerCall),
      replicaUs,
      perReplica,
      replicaCore,
      dbPerCore,
      headMs,
      auditUnitsPerCall: kind.auditUnitsPerCall,
      stmts: kind.stmts,
      chain,
      chainRtt,
      chainLoaded,
      lockWaits: t.rows.map((x) => x.conns?.lock ?? NaN),
      rows: cores.map((k) => {
        const cpu = k * dbPerCore;
        const limit = Math.min(cpu, chain);
        const loaded = Math.min(cpu, chainLoaded);
        return {
          k,
          cpu,
          limit,
          by: cpu <= chain ? 'database CPU' : 'audit head',
          replicas: limit / perReplica,
          replicasOwnCore: limit / replicaCore,
          loaded,
          loadedBy: cpu <= chainLoaded ? 'database CPU' : 'audit head',
          replicasLoaded: loaded / perReplica,
        };
      }),
    };
  }
  return out;
}
