/** Bad inputs the CLI must refuse with one line and exit 2, never a stack trace: policy files, then database files. */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { foreignDb, futureDb, midCorruptDb, noiseDb, realDb, truncatedDb } from '../helpers/bad-db.js';
import { runCli } from '../helpers/cli.js';
import { tempDir } from '../helpers/harness.js';

let tmp: ReturnType<typeof tempDir>;
beforeAll(() => {
  tmp = tempDir();
});
afterAll(() => tmp.cleanup());

/** The whole of stderr is exactly one line, and it is not a stack frame. */
function oneLine(stderr: string): string {
  const lines = stderr.split('\n').filter((l) => l !== '');
  expect(lines, stderr).toHaveLength(1);
  expect(stderr).not.toMatch(/^\s+at /m);
  return lines[0]!;
}

describe('policy files that would break at runtime', () => {
  it('a "billion laughs" YAML file: exit 2, one line naming the alias limit', () => {
    const f = join(tmp.dir, 'bomb.yaml');
    let yaml = 'version: 1\na0: &a0 [lol, lol, lol, lol, lol, lol, lol, lol, lol]\n';
    for (let i = 1; i <= 9; i++)
      yaml += `a${i}: &a${i} [${Array(9)
        .fill(`*a${i - 1}`)
        .join(', ')}]\n`;
    writeFileSync(f, yaml);
    const r = runCli(['policy', 'check', f]);
    expect(r.code).toBe(2);
    expect(oneLine(r.stderr)).toBe(
      `invalid policy ${f}: YAML: aliases expand past the limit of 100 (a "billion laughs" document); write the values out instead`,
    );
  });

  it('a principal name that is an Object.prototype key: the policy is refused, and lookups by such a name find nothing', () => {
    const f = join(tmp.dir, 'proto.yaml');
    writeFileSync(
      f,
      'version: 1\nstdio_principal: a\nprincipals: { a: { scopes: [kb:read] }, constructor: { scopes: [kb:read] } }\n',
    );
    const r = runCli(['policy', 'check', f]);
    expect(r.code).toBe(2);
    expect(oneLine(r.stderr)).toMatch(
      /^invalid policy .*proto\.yaml: principals\.constructor: "constructor" is a name every JavaScript object already has/,
    );
    // With the built-in demo policy, `constructor` is not a principal: no token for it.
    const t = runCli(['token', 'create', '--principal', 'constructor', '--db', join(tmp.dir, 't.db')]);
    expect(t.code).toBe(2);
    expect(t.stderr).toMatch(/"constructor" is not a principal in the policy/);
    expect(t.stdout).toBe('');
  });
});

describe('database files that cannot be used: `itguard status` exits 2 with one line naming the file', () => {
  const cases: [string, (f: string) => string, RegExp][] = [
    [
      'random bytes',
      noiseDb,
      /is not an itguard database \(file is not a SQLite database\); point --db at another file or move it away$/,
    ],
    ['a copy truncated to half', truncatedDb, /is corrupt \(.+\); restore it from a backup or move it away$/],
    [
      "another program's SQLite database",
      foreignDb,
      /is not an itguard database \(user_version 0, tables foo, no itguard meta table\)/,
    ],
    ['a newer schema', futureDb, /was written by a newer itguard \(schema 999 > \d+\); upgrade itguard/],
    [
      'a page corrupted mid-file',
      midCorruptDb,
      /is corrupt \(quick_check: .+\); restore it from a backup or move it away$/,
    ],
  ];
  for (const [what, make, expected] of cases) {
    it(what, () => {
      const f = make(join(tmp.dir, `${what.replace(/\W+/g, '-')}.db`));
      const r = runCli(['status', '--db', f]);
      expect(r.code).toBe(2);
      const line = oneLine(r.stderr);
      expect(line.startsWith(`itguard: database ${f} `), line).toBe(true);
      expect(line).toMatch(expected);
      expect(r.stdout).toBe('');
    });
  }

  it('a database another process holds locked (waits the 5 s busy timeout)', () => {
    const f = realDb(join(tmp.dir, 'locked.db'), 1);
    const holder = new Database(f);
    holder.exec('BEGIN EXCLUSIVE');
    try {
      const r = runCli(['kill', '--reason', 'test', '--db', f]);
      expect(r.code).toBe(2);
      expect(oneLine(r.stderr)).toBe(
        `itguard: database ${f} is locked by another process (SQLITE_BUSY after 5 s); stop it or use another --db`,
      );
    } finally {
      holder.exec('ROLLBACK');
      holder.close();
    }
    expect(runCli(['status', '--db', f]).code).toBe(0);
  });
});
