/**
 * Reset links (src/store/sqlite/reset-store.ts): a claimed link is given back only by the claim that took it, and never once
 * a newer link was issued for the user meanwhile (which revoked every older link of theirs).
 */
import { describe, expect, it } from 'vitest';
import { openDb } from '../../src/store/sqlite/db.js';
import { ResetStore } from '../../src/store/sqlite/reset-store.js';

describe('ResetStore.unclaim', () => {
  it('gives the link back after a refused password, so the user may try again', () => {
    let now = 1_000_000;
    const resets = new ResetStore(openDb(':memory:'), () => now);
    resets.issue('link-a', 'jdoe', 'REQ-1');
    const claim = resets.claim('link-a')!;
    expect(claim.username).toBe('jdoe');
    expect(resets.claim('link-a')).toBeUndefined(); // spent while the directory call runs
    now += 5;
    expect(resets.unclaim('link-a', claim)).toBe(true);
    expect(resets.link('link-a')!.usable).toBe(true);
  });

  it('does not revive a link that a newer link replaced while the directory call ran', () => {
    let now = 1_000_000;
    const resets = new ResetStore(openDb(':memory:'), () => now);
    resets.issue('link-a', 'jdoe', 'REQ-1');
    const claim = resets.claim('link-a')!;
    now += 10;
    resets.issue('link-b', 'jdoe', 'REQ-2'); // a new reset: only link-b may work from now on
    now += 10;
    expect(resets.unclaim('link-a', claim)).toBe(false);
    expect(resets.link('link-a')!.usable).toBe(false);
    expect(resets.link('link-b')!.usable).toBe(true);
  });

  it('does not release a claim it does not hold (a stale claim of an earlier round)', () => {
    let now = 1_000_000;
    const resets = new ResetStore(openDb(':memory:'), () => now);
    resets.issue('link-a', 'jdoe', 'REQ-1');
    const first = resets.claim('link-a')!;
    now += 1;
    expect(resets.unclaim('link-a', first)).toBe(true);
    now += 1;
    const second = resets.claim('link-a')!;
    expect(resets.unclaim('link-a', first)).toBe(false); // the first claim was already released
    expect(resets.link('link-a')!.usable).toBe(false);
    expect(resets.unclaim('link-a', second)).toBe(true);
  });
});
