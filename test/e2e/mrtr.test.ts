/**
 * Approvals over MRTR on 2026-07-28 (DESIGN §4, §6), against the built `serve --http` with the v2 client in manual
 * mode (it does not answer input_required by itself), so the test can tamper with, replay, expire and race the
 * requestState. Side effects are counted from the system's own records (install jobs, approval rows), never from
 * what the client saw.
 */
import { join } from 'node:path';
import {
  Client,
  StreamableHTTPClientTransport,
  isInputRequiredResult,
  type CallToolResult,
} from '@modelcontextprotocol/client';
import { createRequestStateCodec } from '@modelcontextprotocol/server';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { serveHttp, TEST_STATE_KEY, type Served } from '../helpers/cli.js';
import { tempDir } from '../helpers/harness.js';
import { count, seedDb, writePolicy } from '../helpers/planner.js';
import { demoPolicy } from '../helpers/policy-builder.js';
import { openDb } from '../../src/store/sqlite/db.js';
import { MfaStore } from '../../src/store/sqlite/mfa-store.js';

let tmp: ReturnType<typeof tempDir>;
let served: Served;
let db: string;
let tokens: Record<string, string>;
const clients: Client[] = [];

beforeAll(async () => {
  tmp = tempDir();
  db = join(tmp.dir, 'mrtr.db');
  const policy = writePolicy(
    tmp.dir,
    'mrtr',
    demoPolicy()
      .approvals({ wait_seconds: 2 })
      .principal('helpdesk-agent-2', ['kb:read', 'software:read', 'software:install']),
  );
  tokens = seedDb(db, policy, ['helpdesk-agent', 'helpdesk-agent-2']);
  served = await serveHttp(db, ['--policy', policy]);
}, 60_000);
afterAll(async () => {
  for (const c of clients) await c.close().catch(() => undefined);
  await served.stop();
  tmp.cleanup();
});

/** A 2026-07-28 client that declares form elicitation and leaves every input_required to the test. */
async function manual(principal = 'helpdesk-agent', modes: ('form' | 'url')[] = ['form']): Promise<Client> {
  const elicitation = Object.fromEntries(modes.map((m) => [m, {}]));
  const client = new Client(
    { name: 'mrtr-test', version: '1' },
    {
      capabilities: modes.length ? { elicitation } : {},
      versionNegotiation: { mode: { pin: '2026-07-28' } },
      inputRequired: { autoFulfill: false },
    },
  );
  await client.connect(
    new StreamableHTTPClientTransport(new URL(served.url), {
      // Each client is one conversation and names its task, as an agent platform does (DESIGN §3 step 4).
      requestInit: {
        headers: { Authorization: `Bearer ${tokens[principal]}`, 'Itguard-Task': `mrtr-${clients.length}` },
      },
    }),
  );
  clients.push(client);
  return client;
}

type Raw =
  CallToolResult | { resultType: 'input_required'; inputRequests: Record<string, unknown>; requestState: string };

const call = (c: Client, name: string, args: Record<string, unknown>, more: Record<string, unknown> = {}) =>
  c.request({ method: 'tools/call', params: { name, arguments: args, ...more } }, {
    allowInputRequired: true,
  } as never) as Promise<Raw>;

const codeOf = (r: Raw) =>
  (('_meta' in r ? r._meta?.['itguard/error'] : undefined) as { code?: string } | undefined)?.code;
const jobs = (user: string) => count(db, `SELECT count(*) AS n FROM install_jobs WHERE username = '${user}'`);
const reason = 'the user asked in chat';
const approve = { confirm: { action: 'accept', content: { approve: true } } };

/** Round 1 of a self-service (confirm-tier) install: an input_required with a signed state. */
async function firstRound(c: Client, user: string) {
  const args = { user, package: 'vscode', reason };
  const r = await call(c, 'software_install', args);
  expect(isInputRequiredResult(r), JSON.stringify(r)).toBe(true);
  const ir = r as Extract<Raw, { resultType: 'input_required' }>;
  expect(Object.keys(ir.inputRequests)).toEqual(['confirm']);
  expect(typeof ir.requestState).toBe('string');
  return { args, state: ir.requestState };
}

describe('MRTR confirm on 2026-07-28', () => {
  it('accept + approve runs the install exactly once; the same state again is refused', async () => {
    const c = await manual();
    const { args, state } = await firstRound(c, 'jdoe');
    expect(jobs('jdoe')).toBe(0);
    const done = await call(c, 'software_install', args, { requestState: state, inputResponses: approve });
    expect(codeOf(done), JSON.stringify(done)).toBeUndefined();
    expect((done as CallToolResult).structuredContent).toMatchObject({ package: 'vscode', user: 'jdoe' });
    expect(jobs('jdoe')).toBe(1);
    const replayed = await call(c, 'software_install', args, { requestState: state, inputResponses: approve });
    expect(codeOf(replayed)).toBe('APPROVAL_DENIED');
    expect(jobs('jdoe')).toBe(1);
  });

  it('decline and cancel are "not confirmed": refused, nothing runs, the request is denied', async () => {
    const c = await manual();
    for (const action of ['decline', 'cancel'] as const) {
      const user = action === 'decline' ? 'sjohansson' : 'bwilliams';
      const { args, state } = await firstRound(c, user);
      const r = await call(c, 'software_install', args, {
        requestState: state,
        inputResponses: { confirm: { action } },
      });
      expect(codeOf(r)).toBe('APPROVAL_DENIED');
      expect(jobs(user)).toBe(0);
      expect(
        count(
          db,
          `SELECT count(*) AS n FROM approvals WHERE tier = 'confirm' AND status = 'denied' AND target = '${user}'`,
        ),
      ).toBe(1);
      // A decline is not replayed: the same call again (without a key, or with a new one) is a new request, and the
      // user is asked again, as on 2025-11-25.
      for (const more of [{}, { idempotency_key: `after-${action}-1` }]) {
        const again = await call(c, 'software_install', { ...args, ...more });
        expect(isInputRequiredResult(again), `${action} ${JSON.stringify(again)}`).toBe(true);
      }
    }
  });

  it('a tampered, expired, cross-principal or other-arguments state is refused with APPROVAL_DENIED and nothing runs', async () => {
    const c = await manual();
    const { args, state } = await firstRound(c, 'mrossi');
    const [v, body, mac] = state.split('.');
    // Tampered: one character of the signed body changed.
    const flipped = `${v}.${body!.slice(0, -2)}${body!.endsWith('A') ? 'B' : 'A'}${body!.slice(-1)}.${mac}`;
    const t = await call(c, 'software_install', args, { requestState: flipped, inputResponses: approve });
    expect(codeOf(t), JSON.stringify(t)).toBe('APPROVAL_DENIED');
    // Expired: the same payload, signed with the right key but already past its expiry.
    const payload = (JSON.parse(Buffer.from(body!, 'base64url').toString('utf8')) as { p: unknown }).p;
    // Minted with a negative lifetime, it expired a minute before it was made: no waiting for a clock to pass it.
    const past = createRequestStateCodec({ key: new Uint8Array(Buffer.from(TEST_STATE_KEY, 'hex')), ttlSeconds: -60 });
    const expiring = await past.mint(payload);
    const e = await call(c, 'software_install', args, { requestState: expiring, inputResponses: approve });
    expect(codeOf(e), JSON.stringify(e)).toBe('APPROVAL_DENIED');
    // Another principal with the same scopes presents it.
    const other = await manual('helpdesk-agent-2');
    const o = await call(other, 'software_install', args, { requestState: state, inputResponses: approve });
    expect(codeOf(o), JSON.stringify(o)).toBe('APPROVAL_DENIED');
    // Other arguments under the same state.
    const a = await call(
      c,
      'software_install',
      { ...args, version: '1.94.2' },
      { requestState: state, inputResponses: approve },
    );
    expect(codeOf(a), JSON.stringify(a)).toBe('APPROVAL_DENIED');
    expect(jobs('mrossi')).toBe(0);
    // The genuine state still works once (none of the refusals spent it).
    const ok = await call(c, 'software_install', args, { requestState: state, inputResponses: approve });
    expect(codeOf(ok), JSON.stringify(ok)).toBeUndefined();
    expect(jobs('mrossi')).toBe(1);
  });

  it('concurrent retries with one state: the approval is consumed once, one install', async () => {
    const c = await manual();
    const { args, state } = await firstRound(c, 'cokafor');
    const rs = await Promise.all(
      Array.from({ length: 6 }, () =>
        call(c, 'software_install', args, { requestState: state, inputResponses: approve }),
      ),
    );
    expect(rs.filter((r) => codeOf(r) === undefined)).toHaveLength(1);
    expect(rs.filter((r) => codeOf(r) === 'APPROVAL_DENIED')).toHaveLength(5);
    expect(jobs('cokafor')).toBe(1);
  });

  it('inputResponses without a state are ignored: the gate asks again, and nothing is approved', async () => {
    const c = await manual();
    const { args } = await firstRound(c, 'pnair');
    const again = await call(c, 'software_install', args, { inputResponses: approve });
    expect(isInputRequiredResult(again)).toBe(true);
    expect(jobs('pnair')).toBe(0);
  });

  it('a 2026-07-28 request that declares no elicitation goes out of band (an approver decides)', async () => {
    const c = await manual('helpdesk-agent', []);
    const r = await call(c, 'software_install', { user: 'jdoe', package: 'vscode', version: '1.94.2', reason });
    expect(codeOf(r)).toBe('APPROVAL_PENDING');
  });
});

describe('MRTR mfa on 2026-07-28', () => {
  const totp = (user: string) => {
    const d = openDb(db);
    try {
      return new MfaStore(d).currentCode(user)!;
    } finally {
      d.close();
    }
  };
  const resets = (user: string) =>
    count(db, `SELECT count(*) AS n FROM outbox WHERE username = '${user}' AND subject LIKE '%password reset%'`);

  it('URL mode: the page link comes as input_required; the retry after the code is entered returns the reset', async () => {
    const c = await manual('helpdesk-agent', ['url']);
    const args = { user: 'bwilliams', reason };
    const r1 = await call(c, 'password_reset', args);
    expect(isInputRequiredResult(r1), JSON.stringify(r1)).toBe(true);
    const ir = r1 as Extract<Raw, { resultType: 'input_required' }>;
    const page = ir.inputRequests.page as { params: { mode: string; url: string } };
    expect(page.params.mode).toBe('url');
    expect(page.params.url).toMatch(/\/verify\/[\w-]+$/);
    expect(resets('bwilliams')).toBe(0);
    const posted = await fetch(page.params.url, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ code: totp('bwilliams'), decision: 'confirm' }),
    });
    expect(posted.status).toBe(200);
    const done = await call(c, 'password_reset', args, {
      requestState: ir.requestState,
      inputResponses: { page: { action: 'accept' } },
    });
    expect(codeOf(done), JSON.stringify(done)).toBeUndefined();
    expect((done as CallToolResult).structuredContent).toMatchObject({
      user: 'bwilliams',
      must_change_at_next_login: true,
    });
    expect(resets('bwilliams')).toBe(1);
  });

  it('form mode: a wrong code is refused and nothing is reset; the page link stays the out-of-band path', async () => {
    const c = await manual('helpdesk-agent', ['form']);
    const args = { user: 'kowusu', reason };
    const r1 = (await call(c, 'password_reset', args)) as Extract<Raw, { resultType: 'input_required' }>;
    expect(Object.keys(r1.inputRequests)).toEqual(['code']);
    const wrong = await call(c, 'password_reset', args, {
      requestState: r1.requestState,
      inputResponses: { code: { action: 'accept', content: { code: '000000' } } },
    });
    expect(codeOf(wrong)).toBe('APPROVAL_DENIED');
    expect(resets('kowusu')).toBe(0);
  });
});
