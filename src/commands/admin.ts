/** Admin verbs that act on the database directly; every change is audited with actor cli:<os user>. */
import { parseHead, type AuditRow } from '../store/ports/index.js';
import { connectStores } from '../app.js';
import { createToken, revokeToken, setKillSwitch } from '../guard/operator.js';
import { capsView, type CapView } from '../guard/caps-view.js';
import { safeJson, safeText } from '../terminal.js';
import { readArticles, readSynonymsFile } from '../tools/kb/import.js';
import { parseSynonyms } from '../tools/kb/synonyms.js';
import {
  cliActor,
  err,
  fail,
  iso,
  out,
  policyOrExit,
  printJson,
  requireString,
  UsageError,
  type Flags,
  sqliteFileOf,
} from './common.js';

async function stores(flags: Flags) {
  const { policy, source } = policyOrExit(flags);
  return { policy, source, ...(await connectStores(sqliteFileOf(flags, policy.store), policy)) };
}

const capLine = (c: CapView): string =>
  `  ${c.tool.padEnd(17)} ${c.rule.padEnd(24)} ${String(c.measure === 'cost_usd' ? c.used.toFixed(2) : c.used).padStart(8)} / ${String(c.limit).padEnd(6)} ${c.measure === 'cost_usd' ? 'USD' : 'calls'} per ${c.window}${c.per === 'global' ? '' : ` per ${c.per} (busiest: ${safeText(String(c.key))}, ${c.keys} keys)`}  resets ${c.resets_at}${c.alarm_at !== null && c.used >= c.alarm_at ? '  ALARM' : ''}`;

async function lastDrill(s: Awaited<ReturnType<typeof stores>>) {
  const row = await s.store.auditLog.lastEvent('drill');
  return (
    row &&
    ({
      // A drill record always carries its report as detail (`?? 'null'` is for the type: JSON.parse(null) is null too).
      ...(JSON.parse(row.detail ?? 'null') as Record<string, unknown>),
      at: iso(row.ts),
      actor: row.actor,
      result: row.outcome,
    } as Record<string, unknown>)
  );
}

export async function status(flags: Flags): Promise<number> {
  const s = await stores(flags);
  const ks = await s.store.killSwitch.state();
  const head = await s.store.auditLog.head();
  const drill = await lastDrill(s);
  const report = {
    kill_switch: { engaged: ks.engaged, reason: ks.reason, actor: ks.actor, changed_at: iso(ks.changedAt) },
    last_drill: drill ?? null,
    caps: await capsView(s.policy, s.store.caps, undefined, Date.now()),
    audit_head: head,
    tokens_active: (await s.store.tokens.list()).filter((t) => !t.revokedAt).length,
  };
  if (flags.json) printJson(report);
  else {
    out(
      `kill switch: ${ks.engaged ? 'ENGAGED' : 'off'} (${safeText(ks.reason)}; by ${safeText(ks.actor)} at ${iso(ks.changedAt)})`,
    );
    out(
      `last drill:  ${drill ? `${safeText(String(drill.result)).toUpperCase()} at ${String(drill.at)} by ${safeText(String(drill.actor))}, first refusal ${String(drill.first_refusal_ms)} ms, executed after engagement ${String(drill.executed_after_engagement)}` : 'never (run: itguard drill)'}`,
    );
    out('caps:');
    for (const c of report.caps) out(capLine(c));
    if (!report.caps.length) out('  (none in policy)');
    out(`audit head:  seq ${head.seq} ${head.hash}`);
    out(`tokens:      ${report.tokens_active} active`);
  }
  await s.close();
  return 0;
}

export async function caps(flags: Flags): Promise<number> {
  const s = await stores(flags);
  const view = await capsView(s.policy, s.store.caps, undefined, Date.now());
  await s.close();
  if (flags.json) printJson(view);
  else if (!view.length) out('no caps in the policy');
  else for (const c of view) out(capLine(c).trimStart());
  return 0;
}

export async function setKill(flags: Flags, engaged: boolean): Promise<number> {
  const reason = requireString(flags, 'reason');
  const s = await stores(flags);
  const before = await s.store.killSwitch.state();
  const st = await setKillSwitch(s, engaged, reason, cliActor());
  await s.close();
  if (flags.json)
    printJson({ engaged: st.engaged, reason: st.reason, changed_at: iso(st.changedAt), was_engaged: before.engaged });
  else out(`kill switch ${engaged ? 'ENGAGED' : 'released'}: ${safeText(reason)}`);
  return 0;
}

export async function token(flags: Flags): Promise<number> {
  const [verb, arg] = flags.positionals;
  const s = await stores(flags);
  try {
    if (verb === 'create') {
      const principal = requireString(flags, 'principal');
      // A token for a principal the policy does not know would authenticate to nothing: refuse it now.
      if (!Object.hasOwn(s.policy.principals, principal)) {
        return fail(
          flags,
          'USAGE',
          `itguard token create: --principal "${safeText(principal)}" is not a principal in the policy (${safeText(s.source)}); its principals: ${
            Object.keys(s.policy.principals)
              .map((p) => safeText(p))
              .join(', ') || '(none)'
          }`,
          2,
        );
      }
      const label = typeof flags.values.label === 'string' ? flags.values.label : undefined;
      const { token: secret, id } = await createToken(s, principal, cliActor(), label);
      out(secret);
      err(`token ${id} for ${principal} created; it is shown only once`);
      // The token is still made (the policy may change back), but say it will not open /mcp under this policy.
      if (s.policy.auth && !s.policy.auth.staticTokens)
        err(`warning: the policy turns static tokens off (auth.static_tokens: false); /mcp will refuse this token`);
      return 0;
    }
    if (verb === 'list') {
      const list = await s.store.tokens.list();
      if (flags.json) printJson(list);
      else
        for (const t of list)
          out(
            `${safeText(t.id)}  ${safeText(t.principal).padEnd(18)} created ${iso(t.createdAt)}  ${t.revokedAt ? `revoked ${iso(t.revokedAt)}` : 'active'}  last used ${iso(t.lastUsedAt)}  ${safeText(t.label ?? '')}`,
          );
      return 0;
    }
    if (verb === 'revoke') {
      if (!arg) throw new UsageError('token revoke ID');
      if (!(await revokeToken(s, arg, cliActor())))
        return fail(flags, 'NOT_FOUND', `no active token ${safeText(arg)}`, 1);
      if (flags.json) printJson({ id: arg, revoked: true });
      else out(`token ${arg} revoked`);
      return 0;
    }
    throw new UsageError('token create --principal P | list | revoke ID');
  } finally {
    await s.close();
  }
}

export async function kb(flags: Flags): Promise<number> {
  const [verb, dir] = flags.positionals;
  if (verb !== 'import' || !dir) throw new UsageError('kb import DIR');
  const s = await stores(flags);
  try {
    // Everything is read and validated before anything is written: a bad article or vocabulary file changes nothing.
    const articles = readArticles(dir);
    const file = readSynonymsFile(dir);
    if (file) parseSynonyms(file.text, file.file);
    const r = await s.embedded.kb.upsert(articles);
    const vocab = s.embedded.kb.synonyms;
    // An imported vocabulary file replaces the one in use; without one, the one in use is kept.
    const syn = file ? await vocab.put(file.text, file.file) : await vocab.current();
    const source = await vocab.source();
    const synonyms = { version: syn.version, groups: syn.groupCount, imported: Boolean(file), source };
    await s.audit.record({ event: 'kb.imported', actor: cliActor(), detail: { dir, ...r, synonyms } }, true);
    if (flags.json) printJson({ ...r, synonyms });
    else {
      out(`imported ${articles.length} article(s) from ${dir}: ${r.added} added, ${r.updated} updated`);
      out(
        `vocabulary: version ${syn.version}, ${syn.groupCount} group(s), ${file ? 'imported from' : 'kept:'} ${file ? file.file : source}`,
      );
    }
    return 0;
  } catch (e) {
    return fail(flags, 'CONFIG', `kb import: ${(e as Error).message}`, 2);
  } finally {
    await s.close();
  }
}

export async function directory(flags: Flags): Promise<number> {
  const [verb] = flags.positionals;
  if (verb !== 'list') throw new UsageError('directory list | directory enroll USER');
  const s = await stores(flags);
  if (s.policy.backends.directory.kind !== 'embedded') {
    await s.close();
    // A real directory is listed with its own tools; itguard looks users up one at a time and keeps no copy.
    return fail(
      flags,
      'CONFIG',
      `directory list shows the embedded directory; this policy's directory is ${s.policy.backends.directory.kind}`,
      2,
    );
  }
  let users;
  try {
    users = await s.embedded.directory.list();
  } finally {
    await s.close();
  }
  if (flags.json) printJson(users.map(({ recovery: _r, ...u }) => u));
  else
    for (const u of users)
      out(
        `${safeText(u.username).padEnd(12)} ${safeText(u.displayName).padEnd(22)} ${safeText(u.department).padEnd(12)} ${safeText(u.groups.join(','))}${u.disabled ? ' (disabled)' : ''}`,
      );
  return 0;
}

/** `--expect-head SEQ:HASH` as `audit verify` printed it; a usage error (exit 2) when malformed. */
function expectedHead(v: unknown): { seq: number; hash: string } | undefined {
  if (v === undefined) return undefined;
  const head = parseHead(v);
  if (!head)
    throw new UsageError('--expect-head takes SEQ:HASH as audit verify prints it (e.g. 42:9f86d0…, 64 hex digits)');
  return head;
}

export async function audit(flags: Flags): Promise<number> {
  const [verb, arg] = flags.positionals;
  const s = await stores(flags);
  try {
    const show = (rows: AuditRow[]) => {
      if (flags.json) return printJson(rows);
      for (const r of rows) {
        // Security: the tool name of an unknown-tool denial, actors and codes come from the table; escaped.
        const cells = [r.tool, r.outcome, r.code, r.trace_id].map((c) => safeText(c ?? ''));
        if (r.on_behalf_of) cells.push(`for=${safeText(r.on_behalf_of)}`);
        out(
          `${String(r.seq).padStart(6)} ${iso(r.ts)} ${safeText(r.event).padEnd(18)} ${safeText(r.actor ?? '').padEnd(16)} ${cells.join(' ')}`,
        );
      }
    };
    if (verb === 'tail') {
      const n = Number(flags.values.n ?? 20);
      show(await s.store.auditLog.tail(Number.isFinite(n) && n > 0 ? n : 20));
      return 0;
    }
    if (verb === 'show' && typeof flags.values.task === 'string') {
      // One task's calls, refusals, gates and alarms in order: the trace of a conversation (DESIGN §3 step 4).
      const task = flags.values.task;
      if (arg) throw new UsageError('audit show TRACE_ID | audit show --task TASK_ID (not both)');
      const rows = await s.store.auditLog.byTask(task);
      if (!rows.length) {
        if (flags.json) printJson({ task, records: [], error: 'no audit records for this task' });
        else err(`itguard: no audit records for task "${safeText(task)}" (task ids: itguard tasks)`);
        return 1;
      }
      if (flags.json) printJson({ task, records: rows });
      else show(rows);
      return 0;
    }
    if (verb === 'show') {
      if (!arg) throw new UsageError('audit show TRACE_ID');
      const rows = await s.store.auditLog.byTrace(arg);
      if (flags.json) printJson(rows);
      else for (const r of rows) out(safeJson(r));
      if (!rows.length)
        err(
          `no audit records for trace ${safeText(arg)}: check the trace id (it is in the tool result's _meta and every log line)`,
        );
      return rows.length ? 0 : 1;
    }
    if (verb === 'verify') {
      const expectHead = expectedHead(flags.values['expect-head']);
      const r = await s.store.auditLog.verify(expectHead ? { expectHead } : {});
      // The head is printed either way, so it can be anchored (DESIGN §5; docs/operations.md).
      const head = r.ok ? r.head : await s.store.auditLog.head();
      if (flags.json)
        printJson({
          ok: r.ok,
          count: r.count,
          head,
          ...(expectHead ? { expected_head: expectHead } : {}),
          ...(r.ok ? {} : { broken_at: r.brokenAt, reason: r.reason }),
        });
      else if (r.ok)
        out(
          `audit chain OK: ${r.count} record(s); head ${head.seq}:${head.hash}${expectHead ? ` (reaches the anchored head ${expectHead.seq})` : ''}`,
        );
      else
        out(
          `audit chain BROKEN at seq ${r.brokenAt}: ${r.reason} (${r.count} record(s) verified before it); head ${head.seq}:${head.hash}`,
        );
      return r.ok ? 0 : 1;
    }
    if (verb === 'export') {
      for await (const r of s.store.auditLog.all()) out(safeJson(r));
      return 0;
    }
    throw new UsageError('audit tail [--n N] | show TRACE_ID | verify [--expect-head SEQ:HASH] | export');
  } finally {
    await s.close();
  }
}
