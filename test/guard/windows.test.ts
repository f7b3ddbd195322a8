import { describe, expect, it } from 'vitest';
import { windowEnd, windowStart } from '../../src/windows.js';

const t = (s: string) => Date.parse(s);
const iso = (ms: number) => new Date(ms).toISOString();

describe('calendar windows', () => {
  it('UTC days and hours', () => {
    expect(iso(windowStart('day', t('2026-03-10T15:42:00Z'), 'UTC'))).toBe('2026-03-10T00:00:00.000Z');
    expect(iso(windowEnd('day', t('2026-03-10T15:42:00Z'), 'UTC'))).toBe('2026-03-11T00:00:00.000Z');
    expect(iso(windowStart('hour', t('2026-03-10T15:42:00Z'), 'UTC'))).toBe('2026-03-10T15:00:00.000Z');
    expect(iso(windowEnd('hour', t('2026-03-10T15:42:00Z'), 'UTC'))).toBe('2026-03-10T16:00:00.000Z');
  });

  it('a local day in a non-UTC zone (Europe/Berlin, UTC+1 in winter)', () => {
    // 23:30 UTC on Mar 10 is 00:30 on Mar 11 in Berlin.
    expect(iso(windowStart('day', t('2026-03-10T23:30:00Z'), 'Europe/Berlin'))).toBe('2026-03-10T23:00:00.000Z');
    expect(iso(windowEnd('day', t('2026-03-10T22:30:00Z'), 'Europe/Berlin'))).toBe('2026-03-10T23:00:00.000Z');
  });

  it('DST: the spring-forward day in New York is 23 hours long', () => {
    const start = windowStart('day', t('2026-03-08T12:00:00Z'), 'America/New_York');
    const end = windowEnd('day', t('2026-03-08T12:00:00Z'), 'America/New_York');
    expect(iso(start)).toBe('2026-03-08T05:00:00.000Z');
    expect(iso(end)).toBe('2026-03-09T04:00:00.000Z');
    expect((end - start) / 3600_000).toBe(23);
  });

  it('half-hour zones (Asia/Kolkata) have hour windows on the local half hour', () => {
    expect(iso(windowStart('hour', t('2026-05-01T10:10:00Z'), 'Asia/Kolkata'))).toBe('2026-05-01T09:30:00.000Z');
  });
});
