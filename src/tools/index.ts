/** Every tool itguard can expose, in tools/list order. */
import type { AnyTool } from '../core/tool.js';
import { kbGetArticle, kbSearch } from './kb/tools.js';
import { guardStatus } from './status/tools.js';
import { requestStatus } from './status/request-status.js';
import { passwordReset } from './password/tools.js';
import { softwareCatalog, softwareInstall } from './software/tools.js';
import { ticketComment, ticketCreate, ticketGet, ticketSearch } from './tickets/tools.js';

export const ALL_TOOLS: readonly AnyTool[] = [
  kbSearch,
  kbGetArticle,
  ticketSearch,
  ticketGet,
  ticketCreate,
  ticketComment,
  passwordReset,
  softwareCatalog,
  softwareInstall,
  requestStatus,
  guardStatus,
];
