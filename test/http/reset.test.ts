/** The one-time reset page over real HTTP: weak passwords are refused with the reason; the link survives a refusal. */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { SqliteApp as App } from '../../src/app.js';
import { startHttp, type RunningHttp } from '../../src/http/app.js';
import { testApp } from '../helpers/harness.js';

let app: App;
let http: RunningHttp;
beforeAll(async () => {
  app = testApp();
  http = await startHttp(app, { host: '127.0.0.1', port: 0 });
});
afterAll(async () => {
  await http.close();
  app.close();
});

let resetN = 0;
async function newLink(user: string): Promise<string> {
  await app.backends.resets.reset(user, {
    requestId: `reset-${++resetN}`,
    linksBase: http.url,
    signal: AbortSignal.timeout(5000),
  });
  const row = app.sqlite.db
    .prepare('SELECT body FROM outbox WHERE username = ? ORDER BY id DESC LIMIT 1')
    .get(user) as {
    body: string;
  };
  return row.body.match(/https?:\/\/\S+\/reset\/\S+/)![0];
}
const post = (link: string, password: string, confirm = password) =>
  fetch(link, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({ password, confirm }).toString(),
  });
const errorOf = (html: string) => /data-testid="error">([^<]*)</.exec(html)?.[1] ?? '';

describe('reset page password rules', () => {
  it('refuses whitespace, control characters, common passwords and the user’s names, saying which rule; the link stays usable', async () => {
    const link = await newLink('jdoe'); // Jane Doe
    const page = await (await fetch(link)).text();
    expect(page).toMatch(/not one of the most common passwords/);
    const refused: [password: string, reason: RegExp][] = [
      [' '.repeat(14), /only of spaces/],
      ['\t\t\t\t\t\t\t\t\t\t\t\t', /only of spaces/],
      ['correct horse\tbattery', /control character/],
      ['correct horse\u0000battery', /control character/],
      ['Password1234', /most common passwords/],
      ['PASSWORD123!', /most common passwords/],
      ['qwertyuiop123', /most common passwords/],
      ['!!iloveyou2024', /most common passwords/],
      ['letmein letmein', /most common passwords/],
      ['123456789012', /most common passwords|at least/],
      ['jdoe-secret-2024', /your user name or your name/],
      ['Jane Doe forever!', /your user name or your name/],
      ['JANEDOE-123456', /your user name or your name/],
      ['supersecretJane', /your user name or your name/],
      ['short', /at least 12 characters \(this one has 5\)/],
      ['long enough passphrase', /do not match/],
    ];
    for (const [pw, reason] of refused) {
      const res = await post(link, pw, reason.source.includes('match') ? `${pw}x` : pw);
      const html = await res.text();
      expect(res.status, JSON.stringify(pw)).toBe(400);
      expect(errorOf(html), JSON.stringify(pw)).toMatch(reason);
      expect(html, 'the password is never echoed').not.toContain(pw.trim() || 'never');
      // still usable after each refusal
      expect((await fetch(link)).status).toBe(200);
    }
    expect((await app.embedded.directory.user('jdoe'))!.mustChangePassword).toBe(true);
    // "doe" is too short a word to refuse: "does" stays allowed for Jane Doe.
    const ok = await post(link, 'a doe does dance at dawn');
    expect(ok.status).toBe(200);
    expect(await ok.text()).toMatch(/Password set/);
    expect((await app.embedded.directory.user('jdoe'))!.mustChangePassword).toBe(false);
    expect((await post(link, 'another fine passphrase')).status).toBe(404);
  });
});
