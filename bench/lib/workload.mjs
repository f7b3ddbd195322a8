/** The arguments the throughput benchmarks send: varied per call, the same for the guarded and the bare server. */

/** Plain-words questions an agent sends to kb_search about the demo KB (cycled; arguments vary per call). */
export const READ_QUERIES = [
  'vpn keeps disconnecting',
  'vpn certificate error',
  'slow vpn',
  'split tunnelling',
  'enrol authenticator app',
  'lost phone mfa',
  'move mfa to new phone',
  'mfa prompts not arriving',
  'password policy',
  'self service password reset',
  'printer offline',
  'add network printer',
  'wifi guest access',
  'wifi keeps dropping',
  'outlook not syncing',
  'shared mailbox access',
  'email quarantine',
  'phishing report',
  'laptop battery drains',
  'laptop will not boot',
  'docking station monitor',
  'teams camera not working',
  'install software request',
  'onedrive sync stuck',
  'account locked out',
  'new starter laptop',
  'bitlocker recovery key',
  'disk encryption',
  'remote desktop access',
  'calendar sharing permissions',
];

/** Live demo users the write benchmark opens tickets for (rotating, so per-requester cap rows vary). */
export const REQUESTERS = [
  'dkim',
  'asmith',
  'rpatel',
  'kowusu',
  'nfischer',
  'jdoe',
  'wzhang',
  'ahassan',
  'cmurphy',
  'gsilva',
];
