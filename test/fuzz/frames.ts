/**
 * Generated JSON-RPC lines for frame fuzzing: bad JSON, batches, unknown methods, known methods with wrong params,
 * bad envelopes, stray notifications and responses, raw bytes, oversized lines. A frame that is a request carrying
 * the id placeholder ID must be answered with that id; the others must only not hurt.
 */
import fc from 'fast-check';
import { anyJson, nasty } from './gen.js';
import { ENVELOPE } from './support.js';

export const ID = '__FUZZ_ID__';

export interface Frame {
  kind: string;
  /** The line(s) to write, without the final newline; ID stands for the case's id. */
  line: string | Buffer;
  /** Whether a reply with the case's id must come. */
  answered: boolean;
  /** Over the stdio line limit: 4 MiB. */
  huge?: boolean;
}

const METHODS = [
  'initialize',
  'server/discover',
  'ping',
  'tools/list',
  'tools/call',
  'logging/setLevel',
  'resources/list',
  'resources/read',
  'prompts/list',
  'prompts/get',
  'completion/complete',
  'tasks/get',
  'tasks/list',
  'notifications/initialized',
  'notifications/cancelled',
  'elicitation/create',
  'sampling/createMessage',
];
const TOOLS = ['kb_search', 'ticket_create', 'password_reset', 'software_install', 'guard_status', 'ticket_get'];
const withId = (m: Record<string, unknown>) => JSON.stringify({ jsonrpc: '2.0', id: ID, ...m });

/** params for a method: sometimes near-valid (an object with plausible members), often anything at all. */
const params = fc.oneof(
  anyJson,
  fc.record(
    {
      name: fc.oneof(fc.constantFrom(...TOOLS), anyJson),
      arguments: fc.oneof(fc.dictionary(fc.string({ maxLength: 10 }), anyJson, { maxKeys: 4 }), anyJson),
      _meta: fc.oneof(fc.constant(ENVELOPE), anyJson, fc.record({ progressToken: anyJson })),
      protocolVersion: fc.oneof(fc.constantFrom('2025-11-25', '2025-06-18', '2026-07-28', '1.0'), anyJson),
      capabilities: fc.oneof(fc.constant({}), anyJson),
      clientInfo: fc.oneof(fc.constant({ name: 'f', version: '1' }), anyJson),
      level: fc.oneof(fc.constantFrom('debug', 'error', 'loud'), anyJson),
      cursor: anyJson,
      requestId: anyJson,
      requestState: anyJson,
      inputResponses: anyJson,
      task: anyJson,
    },
    { requiredKeys: [] },
  ),
);

const request = fc
  .tuple(fc.constantFrom(...METHODS), params, fc.boolean())
  .map(([method, p, hasParams]) => withId(hasParams ? { method, params: p } : { method }));

export const frames: fc.Arbitrary<Frame> = fc.oneof(
  // a request to a method we serve (or a client-side one), params right or wrong: always answered
  { weight: 8, arbitrary: request.map((line) => ({ kind: 'request', line, answered: true })) },
  {
    weight: 3,
    arbitrary: fc
      .tuple(
        fc.oneof(
          fc.string({ maxLength: 40 }),
          nasty.map((s) => s.slice(0, 2000)),
        ),
        params,
      )
      .map(([method, p]) => ({ kind: 'unknown-method', line: withId({ method, params: p }), answered: true })),
  },
  // bad JSON: random text, truncated requests
  {
    weight: 3,
    arbitrary: fc
      .oneof(
        fc.string({ maxLength: 200 }),
        fc.string({ unit: 'binary', maxLength: 200 }),
        request.chain((r) => fc.nat(r.length - 1).map((n) => r.slice(0, n))),
      )
      .map((s) => s.replace(/\n/g, ' '))
      .filter((s) => {
        try {
          JSON.parse(s);
          return false;
        } catch {
          return true;
        }
      })
      .map((line) => ({ kind: 'bad-json', line, answered: false })),
  },
  // batches (2025-11-25 dropped them): -32600 with id null
  {
    weight: 2,
    arbitrary: fc
      .array(
        fc.oneof(
          request,
          anyJson.map((v) => JSON.stringify(v) ?? 'null'),
        ),
        { maxLength: 5 },
      )
      .map((items) => ({ kind: 'batch', line: `[${items.join(',')}]`, answered: false })),
  },
  // bad envelopes: wrong jsonrpc, odd ids, extra members, a JSON value that is no object
  {
    weight: 3,
    arbitrary: fc
      .record(
        {
          jsonrpc: fc.oneof(fc.constant('2.0'), anyJson),
          id: anyJson,
          method: fc.oneof(fc.constantFrom(...METHODS), anyJson),
          params: params,
          result: anyJson,
          error: anyJson,
          extra: anyJson,
        },
        { requiredKeys: [] },
      )
      .map((m) => ({ kind: 'envelope', line: JSON.stringify(m), answered: false })),
  },
  {
    weight: 1,
    arbitrary: anyJson.map((v) => ({ kind: 'not-object', line: JSON.stringify(v) ?? 'null', answered: false })),
  },
  // notifications and responses nobody asked for: dropped, never answered
  {
    weight: 2,
    arbitrary: fc
      .oneof(
        fc
          .tuple(fc.oneof(fc.constantFrom(...METHODS), fc.string()), params)
          .map(([method, p]) => ({ jsonrpc: '2.0', method, params: p })),
        fc.tuple(anyJson, anyJson).map(([id, result]) => ({ jsonrpc: '2.0', id, result })),
        fc.tuple(anyJson, anyJson).map(([id, error]) => ({ jsonrpc: '2.0', id, error })),
      )
      .map((m) => ({ kind: 'stray', line: JSON.stringify(m), answered: false })),
  },
  // raw bytes: invalid UTF-8, BOM, NUL, CR, several lines at once
  {
    weight: 2,
    arbitrary: fc
      .oneof(
        fc.uint8Array({ maxLength: 300 }).map((b) => Buffer.from(b.map((x) => (x === 0x0a ? 0x20 : x)))),
        fc.constantFrom(
          Buffer.from([0xef, 0xbb, 0xbf, 0x7b, 0x7d]),
          Buffer.from([0xff, 0xfe, 0x00]),
          Buffer.from('\r'),
          Buffer.from('   '),
        ),
        fc
          .array(request, { minLength: 2, maxLength: 4 })
          .map((rs) => Buffer.from(rs.map((r, i) => r.replace(`"${ID}"`, `"${ID}-${i}"`)).join('\r\n'))),
      )
      .map((line) => ({ kind: 'bytes', line, answered: false })),
  },
  // over the 4 MiB line limit; the id comes first, so the -32600 carries it
  {
    weight: 1,
    arbitrary: fc.integer({ min: 4 * 1024 * 1024 + 1, max: 4 * 1024 * 1024 + 200_000 }).map((n) => ({
      kind: 'huge',
      line: `{"jsonrpc":"2.0","id":"${ID}","method":"tools/call","params":{"name":"kb_search","arguments":{"query":"${'q'.repeat(n)}"}}}`,
      answered: true,
      huge: true,
    })),
  },
);
