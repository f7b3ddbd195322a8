/** Argument types shared by tools. The envelope for text written by people is in untrusted.ts. */
import { z } from 'zod';

/**
 * Shown to approvers (console, CLI) and kept in the audit, so it must not carry terminal controls: C0 other than
 * tab and newline, DEL and C1 (U+009B is CSI, an escape sequence in one character) are refused. Output escapes
 * them too (src/terminal.ts); refusing them here keeps them out of the records in the first place.
 */
export const Reason = z
  .string()
  .trim()
  .min(1)
  .max(500)
  // eslint-disable-next-line no-control-regex -- matching control characters is the point
  .regex(/^[^\u0000-\u0008\u000b-\u001f\u007f-\u009f]*$/, {
    error: 'must not contain control characters (U+0000–U+001F except tab and newline, U+007F–U+009F)',
  })
  .describe(
    'Why the agent does this; shown to approvers and kept in the audit. Plain text: tabs and newlines, no other control characters.',
  );
export const IdemKey = z
  .string()
  .regex(/^[A-Za-z0-9._:-]{8,255}$/, { error: 'must be 8..255 characters of [A-Za-z0-9._:-]' })
  .describe('Retry-safe key: repeating a call with the same key never repeats its effect.');
export const UserRef = z
  .string()
  .regex(/^[a-z0-9][a-z0-9._-]{0,63}$/, { error: 'must be a directory username like jdoe' })
  .describe('Directory username, e.g. jdoe.');
