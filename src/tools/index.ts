/** Every tool itguard can expose, in tools/list order. */
import type { AnyTool } from '../guard/types.js';
import { kbGetArticle, kbSearch } from './kb/tools.js';
import { guardStatus } from './status/tools.js';
import { ticketComment, ticketCreate, ticketGet, ticketSearch } from './tickets/tools.js';

export const ALL_TOOLS: readonly AnyTool[] = [kbSearch, kbGetArticle, ticketSearch, ticketGet, ticketCreate, ticketComment, guardStatus];
