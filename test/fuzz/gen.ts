/**
 * Arbitraries for the fuzz suites: tool arguments generated from each tool's own input schema (the JSON Schema
 * tools/list publishes), realistic values for the demo data, and adversarial mutations of them.
 */
import fc from 'fast-check';

export interface JsonSchema {
  type?: string;
  enum?: unknown[];
  pattern?: string;
  minLength?: number;
  maxLength?: number;
  minimum?: number;
  maximum?: number;
  properties?: Record<string, JsonSchema>;
  required?: string[];
  items?: JsonSchema;
}

const USERS = ['obennett', 'tnguyen', 'mrossi', 'dkim', 'pwojcik', 'hyamamoto', 'wzhang', 'jdoe', 'nobody', 'admin'];
/** Values that mean something in the demo data, by field name: they reach the backends, not just the validator. */
const REAL: Record<string, fc.Arbitrary<unknown>> = {
  user: fc.constantFrom(...USERS),
  requester: fc.constantFrom(...USERS),
  key: fc.integer({ min: 1, max: 60 }).map((n) => `IT-${n}`),
  id: fc.integer({ min: 1000, max: 1040 }).map((n) => `KB-${n}`),
  device_id: fc.integer({ min: 2000, max: 2010 }).map((n) => `DT-${n}`),
  package: fc.constantFrom('slack', 'zoom', 'vscode', 'git', 'figma', 'autocad', 'adobe-photoshop', 'no-such-pkg'),
  query: fc.constantFrom('vpn', 'printer', 'mfa reset', 'wifi', 'email', 'laptop'),
  text: fc.constantFrom('vpn', 'printer', 'password'),
};

/** FTS5 query syntax, and the characters an FTS5 MATCH expression gives meaning to. */
export const fts5 = fc
  .array(
    fc.constantFrom(
      '"',
      '*',
      'NEAR(',
      ')',
      '(',
      '^',
      ':',
      'AND',
      'OR',
      'NOT',
      '-',
      '+',
      'title:',
      '{',
      '}',
      "'",
      '\\',
      'vpn',
      'NEAR(vpn wifi, 2)',
      '"unterminated',
      'col:*',
      '^*',
      '""',
      ',',
      '.',
      '\u0000',
    ),
    { minLength: 1, maxLength: 12 },
  )
  .chain((parts) => fc.constantFrom(' ', '').map((sep) => parts.join(sep)));

/** Strings a validator and a backend rarely see. */
export const nasty = fc.oneof(
  fc.string({ unit: 'binary', maxLength: 200 }),
  fc.string({ unit: 'grapheme', maxLength: 200 }),
  fc.constantFrom(
    '\u0000',
    'a\u0000b',
    '\uD800',
    '\uDFFF\uD800',
    '\u202E',
    '\uFEFF',
    '\r\n',
    '%00',
    '${x}',
    "'; DROP TABLE audit;--",
    '../../etc/passwd',
    '<script>',
    '\u0085',
    '𝕏'.repeat(300),
    'IT-1\u0000',
    'KB-1001\n',
  ),
  fts5,
  // huge: up to 100,000 UTF-16 units (≤ 400 KB of UTF-8: under the HTTP body limit, far under the stdio line limit)
  fc
    .tuple(fc.string({ unit: 'grapheme', minLength: 1, maxLength: 4 }), fc.integer({ min: 500, max: 100_000 }))
    .map(([s, n]) => s.repeat(Math.ceil(n / s.length)).slice(0, n)),
);

const deep = fc.tuple(fc.integer({ min: 2, max: 3000 }), fc.boolean()).map(([depth, arrays]) => {
  let v: unknown = 'leaf';
  for (let i = 0; i < depth; i++) v = arrays ? [v] : { a: v };
  return v;
});

/** Any JSON value, including the awkward ones. */
export const anyJson: fc.Arbitrary<unknown> = fc.oneof(
  fc.jsonValue({ maxDepth: 3 }),
  fc.constantFrom(null, true, false, 0, -1, 1e308, -0, 2 ** 53 + 1, 1.5, '', [], {}),
  nasty,
  deep,
);

function stringFor(s: JsonSchema): fc.Arbitrary<string> {
  if (s.enum) return fc.constantFrom(...(s.enum as string[]));
  const min = s.minLength ?? 0;
  const max = s.maxLength ?? 300;
  const base = s.pattern
    ? fc.stringMatching(new RegExp(s.pattern))
    : fc.string({ unit: 'grapheme', minLength: min, maxLength: Math.min(max, 300) });
  return base.map((v) => v.slice(0, max)).filter((v) => v.length >= min);
}

/** Valid arguments (or nearly: realistic values need not exist) for one schema. */
export function fromSchema(s: JsonSchema, field = ''): fc.Arbitrary<unknown> {
  if (s.enum) return fc.constantFrom(...s.enum);
  switch (s.type) {
    case 'string':
      return REAL[field] ? fc.oneof(REAL[field], stringFor(s)) : stringFor(s);
    case 'integer':
      return fc.integer({ min: s.minimum ?? -1000, max: s.maximum ?? 1000 });
    case 'number':
      return fc.double({ min: s.minimum ?? -1e6, max: s.maximum ?? 1e6, noNaN: true });
    case 'boolean':
      return fc.boolean();
    case 'array':
      return fc.array(fromSchema(s.items ?? {}), { maxLength: 5 });
    case 'object': {
      const props = s.properties ?? {};
      const shape = Object.fromEntries(Object.entries(props).map(([k, v]) => [k, fromSchema(v, k)]));
      return fc.record(shape, { requiredKeys: (s.required ?? []).filter((k) => k in props) });
    }
    default:
      return anyJson;
  }
}

type Args = Record<string, unknown>;
type Mutation = (a: Args) => fc.Arbitrary<Args>;

const FORBIDDEN_KEYS = ['__proto__', 'constructor', 'prototype', 'toString', 'hasOwnProperty', '__defineGetter__'];
/** Sets an own property, even `__proto__` (a plain assignment would change the prototype instead). */
const put = (a: Args, k: string, v: unknown): Args => {
  const out = { ...a };
  Object.defineProperty(out, k, { value: v, enumerable: true, writable: true, configurable: true });
  return out;
};

function mutations(s: JsonSchema): Mutation[] {
  const fields = Object.keys(s.properties ?? {});
  const field = fields.length ? fc.constantFrom(...fields) : fc.constant('x');
  const stringFields = fields.filter((f) => s.properties![f]!.type === 'string');
  const sfield = stringFields.length ? fc.constantFrom(...stringFields) : field;
  return [
    // wrong type
    (a) => fc.tuple(field, anyJson).map(([k, v]) => put(a, k, v)),
    // huge, Unicode, NUL, FTS5 syntax in a string field
    (a) => fc.tuple(sfield, nasty).map(([k, v]) => put(a, k, v)),
    // a NUL or control character inside a valid value
    (a) =>
      fc
        .tuple(sfield, fc.constantFrom('\u0000', '\u0007', '\u001b[2J', '\u007f', '\u009b'), fc.nat(20))
        .map(([k, c, at]) => {
          const v = typeof a[k] === 'string' ? (a[k] as string) : 'x';
          return put(a, k, v.slice(0, at) + c + v.slice(at));
        }),
    // prototype keys, at the top and nested
    (a) =>
      fc
        .tuple(fc.constantFrom(...FORBIDDEN_KEYS), anyJson, fc.boolean())
        .map(([k, v, nested]) =>
          nested && fields.length
            ? put(a, fields[0]!, JSON.parse(`{"${k}": ${JSON.stringify(v) ?? 'null'}}`))
            : put(a, k, v),
        ),
    // extra fields
    (a) =>
      fc.dictionary(fc.string({ maxLength: 20 }), anyJson, { minKeys: 1, maxKeys: 4 }).map((extra) => {
        let out = a;
        for (const [k, v] of Object.entries(extra)) out = put(out, k, v);
        return out;
      }),
    // deep nesting in a field
    (a) => fc.tuple(field, deep).map(([k, v]) => put(a, k, v)),
    // a required field dropped
    (a) =>
      field.map((k) => {
        const out = { ...a };
        delete out[k];
        return out;
      }),
    // out-of-range numbers
    (a) =>
      fc
        .tuple(field, fc.constantFrom(0, -1, 21, 51, 1e9, -1e9, 0.5, Number.MAX_SAFE_INTEGER, -0))
        .map(([k, v]) => put(a, k, v)),
  ];
}

export interface ToolCase {
  name: string;
  args: Args;
  /** Which generator made it: 'valid' or 'mutated'. */
  kind: string;
}

/** Tool calls: a listed tool with schema-valid or mutated arguments; now and then a tool that does not exist. */
export function toolCalls(tools: { name: string; inputSchema: JsonSchema }[]): fc.Arbitrary<ToolCase> {
  const perTool = tools.map((t) => {
    const valid = fromSchema(t.inputSchema) as fc.Arbitrary<Args>;
    const muts = mutations(t.inputSchema);
    return fc.oneof(
      { weight: 2, arbitrary: valid.map((args) => ({ name: t.name, args, kind: 'valid' })) },
      {
        weight: 3,
        arbitrary: fc
          .tuple(valid, fc.nat(muts.length - 1))
          .chain(([a, i]) => muts[i]!(a))
          .map((args) => ({ name: t.name, args, kind: 'mutated' })),
      },
    );
  });
  const unknown = fc
    .tuple(
      fc.oneof(fc.constantFrom('', 'KB_SEARCH', 'kb_search ', 'kb_search\u0000', '__proto__', 'constructor'), nasty),
      fc.dictionary(fc.string({ maxLength: 8 }), anyJson, { maxKeys: 3 }),
    )
    .map(([name, args]) => ({ name: name.slice(0, 1000), args, kind: 'unknown-tool' }));
  return fc.oneof({ weight: 20, arbitrary: fc.oneof(...perTool) }, { weight: 1, arbitrary: unknown });
}
