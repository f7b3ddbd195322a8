/** Trace ids are pasted into `itguard audit show ID`: none may read as an option. */
import { describe, expect, it } from 'vitest';
import { newTraceId } from '../src/trace-id.js';

describe('newTraceId', () => {
  it('gives 16 alphanumeric characters, never a leading "-"', () => {
    const ids = new Set<string>();
    for (let i = 0; i < 20_000; i++) {
      const id = newTraceId();
      expect(id).toMatch(/^[0-9A-Za-z]{16}$/);
      ids.add(id);
    }
    expect(ids.size).toBe(20_000);
  });
});
