/** Argument types shared by tools. The envelope for text written by people is in untrusted.ts. */
import { z } from 'zod';

export const Reason = z.string().trim().min(1).max(500).describe('Why the agent does this; shown to approvers and kept in the audit.');
export const IdemKey = z
  .string()
  .regex(/^[A-Za-z0-9._:-]{8,255}$/, { error: 'must be 8..255 characters of [A-Za-z0-9._:-]' })
  .describe('Retry-safe key: repeating a call with the same key never repeats its effect.');
export const UserRef = z
  .string()
  .regex(/^[a-z0-9][a-z0-9._-]{0,63}$/, { error: 'must be a directory username like jdoe' })
  .describe('Directory username, e.g. jdoe.');
