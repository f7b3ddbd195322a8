/**
 * Frame fuzzing (DESIGN §9): generated lines (frames.ts) written raw to `serve --stdio`, and raw HTTP requests to
 * `serve --http` /mcp with generated bodies, methods, content types, Accept headers, tokens, protocol versions and
 * session ids (none, unknown, another principal's, a closed one).
 *
 * Property over stdio: every stdout line is a JSON-RPC 2.0 frame; a request with an id is answered with that id
 * (a result or an error with a code); the server stays up, answers a valid call after every frame, and a process
 * restarted every STDIO_CHUNK frames sees the ones before `initialize`/`server/discover` too.
 * Property over HTTP: never a 5xx, never a hang; JSON bodies parse and carry JSON-RPC 2.0; a valid call succeeds
 * after every request; the process stays up; `audit verify` passes on both databases at the end.
 */
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { join } from 'node:path';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CLI, runCli, serveHttp, type Served } from '../helpers/cli.js';
import { tempDir } from '../helpers/harness.js';
import { frames, ID, type Frame } from './frames.js';
import { ENVELOPE, FRAME_RUNS, FUZZ_SEED, fuzzPolicy, show, tally, withTimeout, check } from './support.js';

interface Reply {
  jsonrpc: string;
  id?: unknown;
  method?: string;
  result?: unknown;
  error?: { code: number; message: string };
}

let tmp: ReturnType<typeof tempDir>;
let policy: string;
beforeAll(() => {
  tmp = tempDir();
  policy = fuzzPolicy(tmp.dir);
});
// FUZZ_KEEP=1 keeps the databases for a look after a failure.
afterAll(() => (process.env.FUZZ_KEEP ? console.log(`fuzz: kept ${tmp?.dir}`) : tmp?.cleanup()));

/** A fresh process every this many frames: the first frames of each meet a connection with no era yet. */
const STDIO_CHUNK = 100;
const stdioRuns = Math.max(2, Math.round(FRAME_RUNS / 2));
const httpRuns = Math.max(2, FRAME_RUNS - stdioRuns);

/** A raw `serve --stdio`: lines in, every stdout line checked as it arrives. */
function rawStdio(db: string) {
  const proc: ChildProcessWithoutNullStreams = spawn(
    process.execPath,
    [CLI, 'serve', '--stdio', '--db', db, '--policy', policy],
    { stdio: ['pipe', 'pipe', 'pipe'], env: { ...process.env, ITGUARD_LOG_LEVEL: 'warn' } },
  );
  let pending = '';
  let err = '';
  const noise: string[] = [];
  const replies = new Map<unknown, Reply>();
  const waiters = new Map<unknown, () => void>();
  proc.stderr.on('data', (d: Buffer) => (err = (err + d.toString()).slice(-20_000)));
  proc.stdout.on('data', (d: Buffer) => {
    pending += d.toString();
    let nl;
    while ((nl = pending.indexOf('\n')) !== -1) {
      const line = pending.slice(0, nl);
      pending = pending.slice(nl + 1);
      let f: Reply;
      try {
        f = JSON.parse(line) as Reply;
      } catch {
        noise.push(line.slice(0, 300));
        continue;
      }
      const ok =
        f?.jsonrpc === '2.0' &&
        (f.method !== undefined ||
          ('id' in f &&
            (f.result !== undefined || (typeof f.error?.code === 'number' && typeof f.error.message === 'string'))));
      if (!ok) noise.push(line.slice(0, 300));
      if (f?.id !== undefined && f.id !== null) {
        replies.set(f.id, f);
        waiters.get(f.id)?.();
      }
    }
  });
  const reply = (id: string, what: string) =>
    withTimeout(
      new Promise<Reply>((resolve) => {
        const got = replies.get(id);
        if (got) return resolve(got);
        waiters.set(id, () => (waiters.delete(id), resolve(replies.get(id)!)));
      }),
      `${what}\nstderr tail:\n${err.slice(-2000)}`,
    );
  const write = (line: string | Buffer) =>
    new Promise<void>((resolve) => {
      if (proc.stdin.write(line)) resolve();
      else proc.stdin.once('drain', resolve);
    });
  return {
    proc,
    noise,
    reply,
    replies,
    stderr: () => err,
    write: async (line: string | Buffer) => write(Buffer.concat([Buffer.from(line), Buffer.from('\n')])),
    stop: () =>
      new Promise<void>((resolve) => {
        if (proc.exitCode !== null) return resolve();
        proc.once('exit', () => resolve());
        proc.stdin.end();
        setTimeout(() => proc.kill('SIGKILL'), 5000).unref();
      }),
  };
}

const withCaseId = (f: Frame, id: string): string | Buffer =>
  typeof f.line === 'string' ? f.line.replaceAll(`"${ID}"`, JSON.stringify(id)) : f.line;

describe('frame fuzzing over stdio', () => {
  it(`serve --stdio: ${stdioRuns} generated lines, each answered or dropped, and a valid call after each`, async () => {
    const db = join(tmp.dir, 'frames-stdio.db');
    const kinds = new Map<string, number>();
    const started = Date.now();
    let s: ReturnType<typeof rawStdio> | undefined;
    let n = 0;
    let probes = 0;
    try {
      await check(
        fc.asyncProperty(frames, async (f) => {
          if (!s || n % STDIO_CHUNK === 0) {
            await s?.stop();
            expect(s?.noise ?? []).toEqual([]);
            s = rawStdio(db);
          }
          const id = `f-${n++}`;
          tally(kinds, f.kind);
          await s.write(withCaseId(f, id));
          if (f.answered) {
            const r = await s.reply(id, `${f.kind} frame ${id}`);
            if (r.error) expect(typeof r.error.code).toBe('number');
          }
          // A valid call afterwards, in whichever era the connection is now (the envelope is ignored on 2025-11-25).
          const probe = `p-${probes++}`;
          await s.write(
            JSON.stringify({
              jsonrpc: '2.0',
              id: probe,
              method: 'tools/call',
              params: { name: 'guard_status', arguments: {}, _meta: ENVELOPE },
            }),
          );
          const p = await s.reply(probe, `the probe after ${f.kind} frame ${id}`);
          expect(p.error, JSON.stringify(p.error)).toBeUndefined();
          expect(s.proc.exitCode).toBe(null);
          expect(s.noise, s.stderr().slice(-2000)).toEqual([]);
        }),
        stdioRuns,
        FUZZ_SEED + 10,
      );
    } finally {
      await s?.stop();
    }
    expect(s?.noise ?? []).toEqual([]);
    const v = runCli(['audit', 'verify', '--db', db]);
    expect(v.code, v.stdout + v.stderr).toBe(0);
    console.log(
      `fuzz frames stdio: ${n} frames, seed ${FUZZ_SEED + 10}, ${Date.now() - started} ms, 0 crashes; kinds: ${show(kinds)}`,
    );
  });
});

describe('frame fuzzing over Streamable HTTP', () => {
  let served: Served;
  let db: string;
  let token: string;
  let readerToken: string;
  const sessions: Record<string, string> = {};

  const initBody = JSON.stringify({
    jsonrpc: '2.0',
    id: 1,
    method: 'initialize',
    params: { protocolVersion: '2025-11-25', capabilities: {}, clientInfo: { name: 'fuzz', version: '1' } },
  });
  const openSession = async (t: string) => {
    const r = await fetch(served.url, {
      method: 'POST',
      headers: {
        'content-type': 'application/json',
        accept: 'application/json, text/event-stream',
        authorization: `Bearer ${t}`,
      },
      body: initBody,
    });
    await r.text();
    return r.headers.get('mcp-session-id')!;
  };

  beforeAll(async () => {
    db = join(tmp.dir, 'frames-http.db');
    served = await serveHttp(db, ['--policy', policy]);
    token = served.demoToken!;
    const made = runCli(['token', 'create', '--principal', 'kb-reader', '--db', db, '--policy', policy]);
    readerToken = /\S{20,}/.exec(made.stdout)?.[0] ?? 'none';
    sessions.own = await openSession(token);
    sessions.foreign = await openSession(readerToken);
    sessions.closed = await openSession(token);
    await fetch(served.url, {
      method: 'DELETE',
      headers: { authorization: `Bearer ${token}`, 'mcp-session-id': sessions.closed },
    });
  });
  afterAll(async () => served?.stop());

  const anyRequest = fc.record({
    wellFormed: fc.constant(false),
    frame: frames,
    method: fc.constantFrom('POST', 'POST', 'POST', 'POST', 'GET', 'DELETE', 'PUT', 'PATCH', 'OPTIONS'),
    contentType: fc.constantFrom(
      'application/json',
      'application/json',
      undefined,
      'text/plain',
      'application/x-www-form-urlencoded',
      'multipart/form-data; boundary=x',
      'application/json; charset=utf-16',
      'application/json-seq',
    ),
    accept: fc.constantFrom(
      'application/json, text/event-stream',
      'application/json',
      'text/event-stream',
      undefined,
      '*/*',
      'text/html',
    ),
    auth: fc.constantFrom('own', 'own', 'own', 'none', 'wrong', 'basic', 'reader'),
    session: fc.constantFrom('none', 'none', 'own', 'foreign', 'closed', 'unknown', 'garbage'),
    version: fc.constantFrom(undefined, '2025-11-25', '2026-07-28', '2024-01-01', 'x'),
  });
  /** Right headers for an era, so the generated body gets past the transport to the SDK and the tools. */
  const eraRequest = fc.record({
    wellFormed: fc.constant(true),
    frame: frames,
    method: fc.constant('POST'),
    contentType: fc.constant('application/json'),
    accept: fc.constant('application/json, text/event-stream'),
    auth: fc.constant('own'),
    session: fc.constantFrom('none', 'own'),
    version: fc.constant(undefined),
  });
  const request = fc.oneof({ weight: 1, arbitrary: anyRequest }, { weight: 2, arbitrary: eraRequest });

  /** For a well-formed request: the 2026-07-28 envelope and Mcp-Method/Mcp-Name headers, or the 2025 session's. */
  function eraHeaders(body: string | Buffer, session: string, headers: Record<string, string>): string | Buffer {
    if (session === 'own') {
      headers['mcp-protocol-version'] = '2025-11-25';
      return body;
    }
    headers['mcp-protocol-version'] = '2026-07-28';
    let m: unknown;
    try {
      m = JSON.parse(body.toString());
    } catch {
      return body;
    }
    if (typeof m !== 'object' || m === null || Array.isArray(m)) return body;
    const msg = m as { method?: unknown; params?: unknown };
    if (typeof msg.method === 'string' && /^[\x20-\x7e]*$/.test(msg.method)) headers['mcp-method'] = msg.method;
    if (typeof msg.params === 'object' && msg.params !== null && !Array.isArray(msg.params)) {
      const p = msg.params as { name?: unknown; _meta?: unknown };
      if (typeof p.name === 'string' && /^[\x20-\x7e]*$/.test(p.name)) headers['mcp-name'] = p.name;
      if (typeof p._meta !== 'object' || p._meta === null) p._meta = ENVELOPE;
      else Object.assign(p._meta, ENVELOPE);
    }
    return JSON.stringify(m);
  }

  it(`serve --http: ${httpRuns} generated requests, never a 5xx or a hang, a valid call after each`, async () => {
    const statuses = new Map<string, number>();
    const started = Date.now();
    let n = 0;
    const probeOk = async (what: string) => {
      const res = await withTimeout(
        fetch(served.url, {
          method: 'POST',
          headers: {
            'content-type': 'application/json',
            accept: 'application/json, text/event-stream',
            authorization: `Bearer ${token}`,
            'mcp-protocol-version': '2026-07-28',
            'mcp-method': 'tools/call',
            'mcp-name': 'guard_status',
          },
          body: JSON.stringify({
            jsonrpc: '2.0',
            id: 'probe',
            method: 'tools/call',
            params: { name: 'guard_status', arguments: {}, _meta: ENVELOPE },
          }),
        }).then(async (r) => ({ status: r.status, text: await r.text() })),
        `the probe after ${what}`,
      );
      expect(res.status, res.text).toBe(200);
      expect(res.text).toContain('"result"');
    };
    await check(
      fc.asyncProperty(request, async (c) => {
        n++;
        const headers: Record<string, string> = {};
        if (c.contentType) headers['content-type'] = c.contentType;
        if (c.accept) headers.accept = c.accept;
        if (c.version) headers['mcp-protocol-version'] = c.version;
        const auth = {
          own: `Bearer ${token}`,
          reader: `Bearer ${readerToken}`,
          wrong: 'Bearer itg_wrong',
          basic: 'Basic eDp5',
          none: '',
        }[c.auth];
        if (auth) headers.authorization = auth;
        const sid = {
          none: '',
          own: sessions.own!,
          foreign: sessions.foreign!,
          closed: sessions.closed!,
          unknown: '00000000-0000-4000-8000-000000000000',
          garbage: 'x'.repeat(300),
        }[c.session];
        if (sid) headers['mcp-session-id'] = sid;
        let body = c.method === 'GET' || c.method === 'OPTIONS' ? undefined : withCaseId(c.frame, `h-${n}`);
        if (c.wellFormed && body !== undefined) body = eraHeaders(body, c.session, headers);
        const what = `${c.method} ${c.frame.kind} (${JSON.stringify({ ...c, frame: undefined })})`;
        const ac = new AbortController();
        const res = await withTimeout(fetch(served.url, { method: c.method, headers, body, signal: ac.signal }), what);
        const type = res.headers.get('content-type') ?? '';
        tally(statuses, `${c.method} ${res.status}`);
        expect(res.status, `${what}: ${res.status}`).toBeLessThan(500);
        if (type.includes('text/event-stream') && c.method === 'GET') {
          ac.abort(); // a standalone SSE stream stays open by design
        } else {
          const text = await withTimeout(res.text(), `the body of ${what}`);
          const payloads = type.includes('text/event-stream')
            ? text
                .split('\n')
                .filter((l) => l.startsWith('data: '))
                .map((l) => l.slice(6))
            : type.includes('application/json')
              ? [text]
              : [];
          for (const p of payloads) {
            const j = JSON.parse(p) as Reply | Reply[];
            for (const m of Array.isArray(j) ? j : [j]) {
              // JSON-RPC, or (401/403 from the auth layer) an OAuth error body
              if (!('jsonrpc' in m) && res.status >= 400) {
                expect(typeof (m as { error?: unknown }).error, `${what}: ${p.slice(0, 300)}`).toBe('string');
                continue;
              }
              expect(m.jsonrpc, `${what}: ${p.slice(0, 300)}`).toBe('2.0');
              if (m.error) expect(typeof m.error.code).toBe('number');
            }
          }
        }
        expect(served.proc.exitCode).toBe(null);
        await probeOk(what);
      }),
      httpRuns,
      FUZZ_SEED + 20,
    );
    // A new 2025-11-25 session opens and serves (the fuzz may have ended the earlier ones with a DELETE).
    const fresh = await openSession(token);
    const still = await fetch(served.url, {
      method: 'POST',
      headers: {
        'content-type': 'application/json',
        accept: 'application/json, text/event-stream',
        authorization: `Bearer ${token}`,
        'mcp-session-id': fresh,
        'mcp-protocol-version': '2025-11-25',
      },
      body: JSON.stringify({
        jsonrpc: '2.0',
        id: 2,
        method: 'tools/call',
        params: { name: 'guard_status', arguments: {} },
      }),
    });
    expect(still.status).toBe(200);
    expect(await still.text()).toContain('"result"');
    await served.stop();
    const v = runCli(['audit', 'verify', '--db', db]);
    expect(v.code, v.stdout + v.stderr).toBe(0);
    console.log(
      `fuzz frames http: ${n} requests, seed ${FUZZ_SEED + 20}, ${Date.now() - started} ms, 0 crashes; statuses: ${show(statuses)}`,
    );
  });
});
