/** safeText and safeJson: nothing a terminal acts on gets through, and what is shown is readable. */
import { describe, expect, it } from 'vitest';
import { safeJson, safeText } from '../src/terminal.js';

describe('safeText', () => {
  it('shows C0, DEL, C1 and bidi controls as escapes; keeps tabs, text and backslashes', () => {
    expect(safeText('\u001b[2J\u001b[31mAPPROVED')).toBe('\\x1b[2J\\x1b[31mAPPROVED');
    expect(safeText('a\u0000b\u0007c\u007fd')).toBe('a\\x00b\\x07c\\x7fd');
    expect(safeText('csi\u009b2J nel\u0085')).toBe('csi\\u009b2J nel\\u0085');
    expect(safeText('\u202eexe.txt \u2066x\u2069 \u200f')).toBe('\\u202eexe.txt \\u2066x\\u2069 \\u200f');
    expect(safeText('over\rwrite')).toBe('over\\rwrite');
    expect(safeText('tab\there, é ü — 漢字 C:\\Users')).toBe('tab\there, é ü — 漢字 C:\\Users');
  });

  it('escapes newlines in single-line mode only', () => {
    expect(safeText('row\nREQ-FAKE')).toBe('row\\nREQ-FAKE');
    expect(safeText('line 1\r\nline 2\u2028', { multiline: true })).toBe('line 1\\r\nline 2\\u2028');
  });

  it('is idempotent: its output has nothing left to escape', () => {
    const once = safeText('\u001b]0;title\u0007\u009b\u202e\n');
    expect(safeText(once)).toBe(once);
  });
});

describe('safeJson', () => {
  it('is valid JSON of the same value, with DEL, C1 and bidi controls escaped', () => {
    const v = { s: 'a\u001b\u007f\u009b\u202e\u2028', n: 1 };
    const text = safeJson(v, 2);
    // eslint-disable-next-line no-control-regex -- matching control characters is the point
    expect(text).not.toMatch(/[\u0000-\u0009\u000b-\u001f\u007f-\u009f\u202a-\u202e\u2028]/);
    expect(JSON.parse(text)).toEqual(v);
    expect(text).toContain('\\u009b\\u202e');
  });
});
