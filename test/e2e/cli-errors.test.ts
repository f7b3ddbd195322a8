/** Bad inputs the CLI must refuse with one line and exit 2, never a stack trace: policy files, then database files. */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
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
