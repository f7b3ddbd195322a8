/**
 * Trace ids: 16 characters from an alphanumeric alphabet (about 95 bits). No '-' or '_': an id that began with
 * '-' would read as an option to `itguard audit show ID`, and ids are pasted into shells and tickets.
 */
import { customAlphabet } from 'nanoid';

export const newTraceId = customAlphabet('0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz', 16);
