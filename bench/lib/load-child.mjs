/**
 * The load generator, in its own process. Receives { url, token, tool, sessions, inFlight, warmupMs, durationMs,
 * tag } over IPC (or `urls` and `tokens` instead of `url` and `token`: several server processes, session s going
 * to urls[s % urls.length], as a balancer would spread them), opens `sessions` MCP sessions (initialize +
 * notifications/initialized), then keeps `inFlight`
 * tools/call requests outstanding per session for warm-up + duration, and reports the calls completed inside the
 * measured window. It speaks Streamable HTTP with plain node:http (keep-alive) and parses the SSE/JSON response
 * itself: a lighter client than the SDK's, so the client process is not the bottleneck of the measurement.
 * Every response is checked: a JSON-RPC error or an isError tool result counts as an error, not a call.
 */
import http from 'node:http';
import { openSession, post, responseOf } from './mcp-http.mjs';
import { READ_QUERIES, REQUESTERS } from './workload.mjs';

function argsFor(tool, tag, s, loop, n) {
  if (tool === 'kb_search') return { query: READ_QUERIES[(s * 7 + loop * 3 + n) % READ_QUERIES.length] };
  return {
    summary: `Bench ticket ${tag} s${s} l${loop} #${n}: laptop fan is loud`,
    requester: REQUESTERS[(s + loop + n) % REQUESTERS.length],
    reason: 'benchmark load',
  };
}

async function run(cfg) {
  const agent = new http.Agent({ keepAlive: true, maxSockets: cfg.sessions * cfg.inFlight + cfg.sessions });
  const urls = cfg.urls ?? [cfg.url];
  const tokens = cfg.tokens ?? [cfg.token];
  const urlOf = (s) => urls[s % urls.length];
  const sessions = [];
  for (let s = 0; s < cfg.sessions; s++) sessions.push(await openSession(agent, urlOf(s), tokens[s % tokens.length]));

  const t0 = performance.now();
  const measureFrom = t0 + cfg.warmupMs;
  const stopAt = measureFrom + cfg.durationMs;
  let calls = 0;
  let totalCalls = 0; // including warm-up and the tail: what a profile of the whole server process saw
  let errors = 0;
  let firstError;
  const latencies = [];
  let id = 1;

  const loop = async (s, l) => {
    for (let n = 0; performance.now() < stopAt; n++) {
      const myId = id++;
      const start = performance.now();
      let ok = false;
      try {
        const r = await post(
          agent,
          urlOf(s),
          {
            jsonrpc: '2.0',
            id: myId,
            method: 'tools/call',
            params: { name: cfg.tool, arguments: argsFor(cfg.tool, cfg.tag, s, l, n) },
          },
          sessions[s],
        );
        const msg = responseOf(r, myId);
        if (msg.error) throw new Error(`JSON-RPC error ${JSON.stringify(msg.error)}`);
        if (msg.result.isError) throw new Error(`tool error: ${msg.result.content?.[0]?.text}`);
        ok = true;
      } catch (e) {
        firstError ??= String(e?.message ?? e);
      }
      const end = performance.now();
      if (ok) totalCalls += 1;
      // Throughput = calls completed inside the measured window (warm-up completions are not counted).
      if (end >= measureFrom && end <= stopAt) {
        if (ok) {
          calls += 1;
          latencies.push(end - start);
        } else errors += 1;
      } else if (!ok) errors += 1;
    }
  };
  // Tell the orchestrator where the measured window starts and ends (it samples the server's CPU time there), with
  // this process's own CPU time so far.
  const mark = (at) => process.send({ type: 'mark', at, usage: process.cpuUsage() });
  setTimeout(() => mark('start'), cfg.warmupMs).unref();
  setTimeout(() => mark('stop'), cfg.warmupMs + cfg.durationMs).unref();
  const loops = [];
  for (let s = 0; s < cfg.sessions; s++) for (let l = 0; l < cfg.inFlight; l++) loops.push(loop(s, l));
  await Promise.all(loops);
  agent.destroy();
  return { calls, totalCalls, errors, firstError, seconds: cfg.durationMs / 1000, latencies };
}

process.on('message', (cfg) => {
  run(cfg).then(
    (r) => process.send({ type: 'done', ...r }, () => process.exit(0)),
    (e) => process.send({ type: 'failed', error: String(e?.stack ?? e) }, () => process.exit(1)),
  );
});
