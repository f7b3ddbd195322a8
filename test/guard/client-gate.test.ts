/** The one decision of how a client can be asked (src/client-gate.ts): per era and declared capabilities. */
import { describe, expect, it } from 'vitest';
import { askChannel } from '../../src/client-gate.js';

describe('askChannel', () => {
  it('2025-11-25: push elicitation in the modes declared at initialize', () => {
    expect(askChannel('legacy', { elicitation: { form: {}, url: {} } })).toEqual({
      kind: 'push',
      form: true,
      url: true,
    });
    expect(askChannel('legacy', { elicitation: { form: {} } })).toEqual({ kind: 'push', form: true, url: false });
    expect(askChannel('legacy', {})).toEqual({ kind: 'none', form: false, url: false });
    expect(askChannel('legacy', undefined)).toEqual({ kind: 'none', form: false, url: false });
  });

  it('2026-07-28: input_required (MRTR) in the modes this request declared; none declared → out of band', () => {
    expect(askChannel('modern', { elicitation: { form: {}, url: {} } })).toEqual({
      kind: 'mrtr',
      form: true,
      url: true,
    });
    expect(askChannel('modern', { elicitation: { url: {} } })).toEqual({ kind: 'mrtr', form: false, url: true });
    expect(askChannel('modern', {})).toEqual({ kind: 'none', form: false, url: false });
    expect(askChannel('modern', undefined)).toEqual({ kind: 'none', form: false, url: false });
  });
});
