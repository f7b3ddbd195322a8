/** `itguard serve --stdio | --http`. */
import { serveStdio } from '@modelcontextprotocol/server/stdio';
import { startApp } from '../app.js';
import { createToken } from '../guard/operator.js';
import { createServer, newSession } from '../server.js';
import { LineStdioTransport } from '../stdio.js';
import { config, ConfigError } from '../config.js';
import { sqliteFileOf, err, policyOrExit, UsageError, type Flags } from './common.js';

export async function serve(flags: Flags): Promise<void> {
  const stdio = flags.values.stdio === true;
  const http = flags.values.http === true;
  if (stdio === http) throw new UsageError('serve needs exactly one of --stdio or --http');
  const { policy, source } = policyOrExit(flags);
  // Replicas behind one URL must verify each other's MRTR states: a shared key, not one per database. The demo
  // (`npm start`) keeps a generated key in its database.
  if (http && !config().stateKey && !policy.demo)
    throw new ConfigError(
      'ITGUARD_STATE_KEY: required when serving HTTP (64+ hex characters or base64 of 32+ bytes, the same on every replica)',
    );
  const metrics = http ? await (await import('../metrics.js')).createPromMetrics() : undefined;
  const dbPath = sqliteFileOf(flags, policy.store);
  const app = await startApp({ dbPath, policy, ...(metrics ? { metrics } : {}) });
  app.log.info(
    { policy: source, store: app.storeKind, ...(app.storeKind === 'sqlite' ? { db: dbPath } : {}), seeded: app.seeded },
    'itguard starting',
  );

  let stop: () => Promise<void>;
  if (stdio) {
    const principal = app.principal(policy.stdioPrincipal)!;
    // Our own line transport under the SDK's dual-era entry: a bad or oversized line is answered, and serving goes
    // on (src/stdio.ts). The opening message picks the era and pins one instance for the connection: an
    // `initialize` gets a 2025-11-25 instance with the process's one session; a 2026-07-28 opening (a `_meta`
    // envelope claim, `server/discover`) gets an instance without one.
    const transport = new LineStdioTransport({ log: app.log });
    const onerror = (e: Error) => app.log.debug({ err: e }, 'stdio transport error');
    const served = serveStdio(
      ({ era }) => {
        const server =
          era === 'modern'
            ? createServer(app, { principal, era, connection: newSession('stdio', app.now()) })
            : createServer(app, { principal, session: newSession('stdio', app.now()) });
        server.onerror = onerror;
        app.log.debug({ era }, 'stdio connection opened');
        return server;
      },
      { transport, onerror },
    );
    app.log.info({ principal: principal.name }, 'serving MCP over stdio');
    // The MFA verification page (a loopback listener) starts once the first answer is out (or after 250 ms without
    // one): it is not needed to answer initialize, and loading express stays off the cold start's path. Write
    // tools wait for it (links.ready) before their effect.
    const verify = Promise.race([transport.firstWrite, new Promise((r) => setTimeout(r, 250).unref())])
      .then(() => import('../http/app.js'))
      .then((m) => m.startVerifyListener(app))
      .then(
        (v) => (app.log.info({ verify_page: `${v.url}/verify` }, 'MFA verification page listening on loopback'), v),
      );
    app.links.ready = verify.catch((e: unknown) => app.log.error({ err: e }, 'MFA verification page failed to start'));
    const b = policy.backends;
    if ((b.directory.kind !== 'embedded' || b.outbox.kind !== 'embedded') && !config().publicUrl) {
      // A mailed link must outlive this desktop process: docs/backends.md "Where the links point".
      app.log.warn(
        "reset and verification links point at this process's loopback page and stop working when it exits; set ITGUARD_PUBLIC_URL to a long-running serve --http",
      );
    }
    stop = async () => {
      await served.close();
      await (await verify).close();
    };
    process.stdin.on('end', () => void shutdown('stdin closed'));
    // The client is gone when stdout breaks (EPIPE): nobody is left to answer.
    process.stdout.on('error', () => void shutdown('stdout closed'));
  } else {
    const host = typeof flags.values.host === 'string' ? flags.values.host : (config().host ?? '127.0.0.1');
    const portText = typeof flags.values.port === 'string' ? flags.values.port : String(config().port ?? 3333);
    const port = Number(portText);
    if (!Number.isInteger(port) || port < 0 || port > 65535)
      throw new UsageError(`--port: expected 0..65535, got ${portText}`);
    const { startHttp } = await import('../http/app.js');
    const running = await startHttp(app, { host, port }).catch(async (e: unknown) => {
      await app.close();
      throw listenError(e, host, port);
    });
    app.log.info({ url: `${running.url}/mcp` }, 'serving MCP over Streamable HTTP');
    const auth = policy.auth;
    if (auth) {
      app.log.info(
        { issuers: auth.issuers, audience: auth.audience, static_tokens: auth.staticTokens },
        'accepting OAuth access tokens',
      );
      err(
        `itguard: OAuth resource ${auth.audience} (issuers: ${auth.issuers.join(', ')}); metadata at ${running.url}/.well-known/oauth-protected-resource/mcp`,
      );
    }
    if (auth && !auth.staticTokens) {
      err(`itguard: MCP endpoint ${running.url}/mcp  (static tokens are off: auth.static_tokens is false)`);
    } else if (app.seeded) {
      const { token } = await createToken(
        app,
        policy.stdioPrincipal,
        'system:demo',
        'demo token (printed once at first start)',
      );
      err(demoBanner(`${running.url}/mcp`, policy.stdioPrincipal, token));
    } else {
      err(
        `itguard: MCP endpoint ${running.url}/mcp  (create a token: npx itguard token create --principal ${policy.stdioPrincipal})`,
      );
    }
    stop = () => running.close();
  }

  let stopping = false;
  async function shutdown(why: string): Promise<void> {
    if (stopping) return;
    stopping = true;
    app.log.info({ why }, 'itguard stopping');
    await stop().catch(() => undefined);
    await app.close().catch(() => undefined);
    process.exit(0);
  }
  process.on('SIGINT', () => void shutdown('SIGINT'));
  process.on('SIGTERM', () => void shutdown('SIGTERM'));
}

/** A listen failure an operator can fix (busy port, privileged port, unknown host) as one sentence (exit 2). */
function listenError(e: unknown, host: string, port: number): unknown {
  const code = (e as NodeJS.ErrnoException | null)?.code;
  const where = `${host}:${port}`;
  if (code === 'EADDRINUSE')
    return new ConfigError(
      `cannot listen on ${where}: the port is already in use (another itguard or another program); stop it or choose another with --port or ITGUARD_PORT`,
    );
  if (code === 'EACCES')
    return new ConfigError(
      `cannot listen on ${where}: permission denied (ports below 1024 need privileges); choose another with --port`,
    );
  if (code === 'EADDRNOTAVAIL' || code === 'ENOTFOUND' || code === 'EAI_AGAIN')
    return new ConfigError(
      `cannot listen on ${where}: the address is not on this machine (${code}); choose another with --host or ITGUARD_HOST`,
    );
  return e;
}

function demoBanner(url: string, principal: string, token: string): string {
  return `
==================================================================
 itguard is serving MCP over Streamable HTTP with demo data
   URL:        ${url}
   principal:  ${principal}
   demo token: ${token}
 (the token is shown only this once; make more with
  npx itguard token create --principal ${principal})

 Try it with the MCP Inspector (CLI mode):
   npx @modelcontextprotocol/inspector@latest --cli ${url} --transport http \\
     --header "Authorization: Bearer ${token}" --method tools/list
 or open the Inspector UI (npx @modelcontextprotocol/inspector@latest), choose
 "Streamable HTTP", URL ${url}, and add the header
   Authorization: Bearer <token>
==================================================================
`;
}
