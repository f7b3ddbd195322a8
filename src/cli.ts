#!/usr/bin/env node
/** The `itguard` command: parses argv and dispatches to src/commands. Exit codes: 0 ok, 1 check failed, 2 usage or config error. */
import { parseArgs } from 'node:util';
import { config } from './config.js';
import { defaultDbPath, err, fail, printJson, UsageError, type Flags } from './commands/common.js';

const USAGE = `usage: itguard <command> [--db FILE] [--policy FILE] [--json]

  serve --stdio | --http [--host 127.0.0.1] [--port 3333]
  status                                    kill switch, last drill, cap usage, audit head
  caps                                      each cap rule's usage in its current window
  budgets                                   each budget's usage per principal, user and task; the fleet breakers
  tasks [--tripped]                         open tasks (conversations, jobs) with their usage and breaker
  breaker reset PRINCIPAL | --task ID       clear a principal's fleet breaker or one task's breaker (audited)
  drill [--seconds 1.5] [--concurrency 4]   kill-switch drill against a real server process
  kill --reason TEXT | resume --reason TEXT
  token create --principal P [--label L] | token list | token revoke ID
  kb import DIR
  directory list | directory enroll USER     enroll prints the otpauth:// URI alone on stdout
  approvals list [--all] | approve ID | deny ID [--note TEXT]
  outbox [--show-links]                     deliveries to users' recovery channels
  notify list [--status S] | retry ID | test   approver notifications (mail, Slack, webhooks)
  audit tail [--n N] | show TRACE_ID | show --task TASK_ID | verify | export
  policy check [FILE] [--probe]             --probe: the backends, notification channels and the store
  store migrate [--to postgres|sqlite]      bring the policy's store to this build's schema (prints the version)
  store copy --from sqlite:FILE --to postgres   move a SQLite deployment into a new, empty PostgreSQL store
  report autonomy                           per action class, how often human gates granted it unchanged
`;

async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  if (!command || command === 'help' || command === '--help' || command === '-h') {
    process.stdout.write(USAGE);
    return command ? 0 : 2;
  }
  config(); // the environment is validated once, before any verb runs: a bad ITGUARD_* value is exit 2 with its name
  const { values, positionals } = parseArgs({
    args: rest,
    allowPositionals: true,
    strict: true,
    options: {
      db: { type: 'string' },
      policy: { type: 'string' },
      json: { type: 'boolean' },
      stdio: { type: 'boolean' },
      http: { type: 'boolean' },
      host: { type: 'string' },
      port: { type: 'string' },
      reason: { type: 'string' },
      principal: { type: 'string' },
      label: { type: 'string' },
      n: { type: 'string' },
      seconds: { type: 'string' },
      concurrency: { type: 'string' },
      note: { type: 'string' },
      all: { type: 'boolean' },
      'show-links': { type: 'boolean' },
      task: { type: 'string' },
      tripped: { type: 'boolean' },
      probe: { type: 'boolean' },
      status: { type: 'string' },
      'expect-head': { type: 'string' },
      from: { type: 'string' },
      to: { type: 'string' },
    },
  });
  const flags: Flags = {
    db: defaultDbPath(values.db),
    dbExplicit: values.db !== undefined || config().dbFile !== undefined,
    policyFlag: values.policy,
    json: values.json === true,
    values,
    positionals,
  };
  // Each verb loads only its own module: `serve --stdio` starts without the admin and HTTP code.
  const admin = () => import('./commands/admin.js');
  const gates = () => import('./commands/gates.js');
  switch (command) {
    case 'serve':
      await (await import('./commands/serve.js')).serve(flags);
      return -1; // keeps running
    case 'status':
      return (await admin()).status(flags);
    case 'caps':
      return (await admin()).caps(flags);
    case 'budgets':
      return (await import('./commands/budgets.js')).budgets(flags);
    case 'breaker':
      return (await import('./commands/budgets.js')).breaker(flags);
    case 'tasks':
      return (await import('./commands/budgets.js')).tasks(flags);
    case 'drill':
      return (await import('./commands/drill.js')).drill(flags);
    case 'kill':
      return (await admin()).setKill(flags, true);
    case 'resume':
      return (await admin()).setKill(flags, false);
    case 'token':
      return (await admin()).token(flags);
    case 'kb':
      return (await admin()).kb(flags);
    case 'directory':
      return positionals[0] === 'enroll' ? (await gates()).enroll(flags) : (await admin()).directory(flags);
    case 'approvals':
      return (await gates()).approvals(flags);
    case 'outbox':
      return (await gates()).outbox(flags);
    case 'notify':
      return (await import('./commands/notify.js')).notify(flags);
    case 'audit':
      return (await admin()).audit(flags);
    case 'report':
      return (await import('./commands/report.js')).reportAutonomy(flags);
    case 'policy':
      return (await import('./commands/policy.js')).policyCheck(flags);
    case 'store':
      return (await import('./commands/store.js')).store(flags);
    default:
      throw new UsageError(`unknown command "${command}"`);
  }
}

/** By name, not instanceof: importing store/db.ts here would load the native SQLite addon for `help` and `policy check`. */
const isConfigError = (e: unknown): e is Error =>
  e instanceof Error && (e.name === 'DatabaseError' || e.name === 'PolicyError' || e.name === 'ConfigError');

// `itguard audit export | head` closes stdout early: that is not an error.
process.stdout.on('error', (e: NodeJS.ErrnoException) => {
  if (e.code === 'EPIPE') process.exit(0);
  throw e;
});

main(process.argv.slice(2)).then(
  (code) => {
    if (code >= 0) process.exitCode = code;
  },
  (e: unknown) => {
    // Under --json a failure is a JSON document on stdout too (DESIGN §7: the same convention as success).
    const flags = { json: process.argv.includes('--json') };
    // `code` may be anything (an McpError's is a number): test it is a string before reading it as one.
    const code = (e as { code?: unknown } | null)?.code;
    if (e instanceof UsageError || (typeof code === 'string' && code.startsWith('ERR_PARSE_ARGS'))) {
      if (flags.json) fail(flags, 'USAGE', `itguard: ${(e as Error).message}`, 2);
      else err(`itguard: ${(e as Error).message}\n\n${USAGE}`);
      process.exitCode = 2;
    } else if (isConfigError(e)) {
      // A file, variable or port that cannot be used (store/db.ts DatabaseError, policy/load.ts PolicyError,
      // config.ts ConfigError, a busy port): the sentence alone, no stack.
      process.exitCode = fail(flags, 'CONFIG', `itguard: ${e.message}`, 2);
    } else {
      if (flags.json) printJson({ ok: false, error: { code: 'INTERNAL', message: String((e as Error).message ?? e) } });
      err(`itguard: ${(e as Error).stack ?? String(e)}`);
      process.exitCode = 2;
    }
  },
);
