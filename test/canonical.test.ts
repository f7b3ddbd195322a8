/** canonicalJson and redact: the same bytes as the recursive versions they replace, at any depth. */
import { describe, expect, it } from 'vitest';
import { canonicalJson, oversize, redact } from '../src/canonical.js';

/** The recursive definition canonicalJson must keep matching: stored audit hashes depend on these bytes. */
function reference(value: unknown): string {
  const sortKeys = (v: unknown): unknown => {
    if (Array.isArray(v)) return v.map(sortKeys);
    if (v && typeof v === 'object') {
      const out: Record<string, unknown> = {};
      for (const k of Object.keys(v).sort()) {
        const x = (v as Record<string, unknown>)[k];
        if (x !== undefined) out[k] = sortKeys(x);
      }
      return out;
    }
    return v;
  };
  return JSON.stringify(sortKeys(value));
}

/** A small deterministic PRNG, so a failure is reproducible. */
function rng(seed: number) {
  return () => (seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31;
}

function randomValue(r: () => number, depth: number): unknown {
  const leaves = [
    null,
    true,
    false,
    0,
    -1.5,
    1e21,
    NaN,
    Infinity,
    undefined,
    '',
    'é\u0000"\\\u2028\ud800',
    'password',
    () => 1,
  ];
  if (depth > 4 || r() < 0.4) return leaves[Math.floor(r() * leaves.length)];
  if (r() < 0.5) return Array.from({ length: Math.floor(r() * 4) }, () => randomValue(r, depth + 1));
  const o: Record<string, unknown> = {};
  // Index-like keys ("2", "10", the 2^32-2 boundary) are where an object's own key order differs from sort().
  const keys = ['b', 'a', 'token', '10', '2', '01', '-1', '4294967294', '4294967295', 'Z', 'ä', ''];
  for (let i = Math.floor(r() * 6); i > 0; i--) o[keys[Math.floor(r() * keys.length)]!] = randomValue(r, depth + 1);
  return o;
}

const nested = (depth: number, wrap: (v: unknown) => unknown): unknown => {
  let v: unknown = 'x';
  for (let i = 0; i < depth; i++) v = wrap(v);
  return v;
};

describe('canonicalJson', () => {
  it('writes exactly what the recursive version wrote, for 5,000 random values', () => {
    const r = rng(42);
    for (let i = 0; i < 5000; i++) {
      const v = randomValue(r, 0);
      expect(canonicalJson(v)).toBe(reference(v));
    }
    for (const v of [
      [1, [2, [3]]],
      { b: { d: 1, c: [undefined, { z: 1, y: 2 }] }, a: [] },
      new Date(0),
      new Array<unknown>(2).concat([1]),
      'x',
      3,
    ]) {
      expect(canonicalJson(v)).toBe(reference(v));
    }
  });

  it('handles 100,000 levels of objects and arrays, and refuses a cycle with a TypeError', () => {
    const objects = canonicalJson(nested(100_000, (v) => ({ a: v })));
    expect(objects.length).toBe(100_000 * 6 + 3);
    expect(objects.startsWith('{"a":{"a":')).toBe(true);
    expect(canonicalJson(nested(100_000, (v) => [v]))).toBe(`${'['.repeat(100_000)}"x"${']'.repeat(100_000)}`);
    const shared = { k: 1 };
    expect(canonicalJson({ a: shared, b: [shared] })).toBe('{"a":{"k":1},"b":[{"k":1}]}');
    const cyclic: Record<string, unknown> = {};
    cyclic.self = { back: cyclic };
    expect(() => canonicalJson(cyclic)).toThrow(TypeError);
  });
});

describe('redact', () => {
  it('replaces values under secret-looking keys at any depth', () => {
    expect(redact({ user: 'jdoe', password: 'hunter2', nested: [{ otp_code: '123456', ok: 1 }] })).toEqual({
      user: 'jdoe',
      password: '[REDACTED]',
      nested: [{ otp_code: '[REDACTED]', ok: 1 }],
    });
    const deep = redact(nested(50_000, (v) => ({ token: 's3cret', a: v })));
    const text = canonicalJson(deep);
    expect(text).not.toContain('s3cret');
    expect(text.match(/\[REDACTED\]/g)).toHaveLength(50_000);
  });

  it('leaves a cycle a cycle instead of looping', () => {
    const cyclic: Record<string, unknown> = { password: 'p' };
    cyclic.self = cyclic;
    const copy = redact(cyclic) as Record<string, unknown>;
    expect(copy.self).toBe(copy);
    expect(copy.password).toBe('[REDACTED]');
  });
});

describe('oversize', () => {
  it('reports too deep or too large without walking the whole value', () => {
    expect(oversize({ a: [{ b: 1 }] }, 3, 10)).toBeUndefined();
    expect(oversize({ a: [{ b: 1 }] }, 2, 10)).toEqual({ why: 'too deep', maxDepth: 2 });
    expect(
      oversize(
        nested(1_000_000, (v) => [v]),
        64,
        1000,
      ),
    ).toEqual({ why: 'too deep', maxDepth: 64 });
    expect(oversize({ a: Array.from({ length: 20 }, () => 0) }, 64, 10)).toEqual({ why: 'too large', maxNodes: 10 });
    expect(oversize('x', 1, 1)).toBeUndefined();
  });
});
