import { describe, expect, it } from 'vitest';
import { passwordProblem } from '../../src/http/password-rules.js';

const check = (password: string, displayName = 'Jane Doe', username = 'jdoe') =>
  passwordProblem({ password, confirm: password, username, displayName });

describe('passwordProblem', () => {
  it('accepts long passphrases, in any script, with spaces and emoji', () => {
    for (const pw of [
      'correct horse battery staple',
      'Tr0ub4dor&3 extended',
      'пароль надёжный как скала',
      'mañana is another day',
      '👩‍💻 writes code all day', // with a zero-width joiner: a format character, not a control one
      ' leading and trailing spaces ',
      'a doe does dance at dawn',
      'password manager generated: x7#Lq9!vT2@m', // a common word inside a longer password is fine
    ])
      expect(check(pw), pw).toBeUndefined();
  });

  it('refuses whitespace-only and invisible-only passwords, and control characters anywhere', () => {
    expect(check('\u00a0'.repeat(12))).toMatch(/only of spaces/);
    expect(check('\u200b'.repeat(12))).toMatch(/only of spaces/);
    expect(check(' \n '.repeat(5))).toMatch(/only of spaces/);
    for (const c of ['\n', '\r', '\u0000', '\u001b', '\u007f', '\u0085'])
      expect(check(`long enough ${c} words`)).toMatch(/control character/);
  });

  it('refuses common passwords however padded or cased, and keyboard or alphabet runs', () => {
    for (const pw of [
      'Password123!',
      'P@ssw0rd2024!!',
      'WELCOME1WELCOME1',
      'qwertyuiopas',
      'abcdefghijkl',
      '0987654321098',
      'Dragon2024!!',
      '1q2w3e4r5t!!!!',
    ])
      expect(check(pw), pw).toMatch(/most common/);
  });

  it('refuses the user name, the display name, and its words of 4+ characters', () => {
    expect(check('my name is jdoe ok')).toMatch(/your name/);
    expect(check('J.Doe and Jane Doe')).toMatch(/your name/);
    expect(check('Oyelaran-1234567', 'Tomi Oyelaran', 'toyelaran')).toMatch(/your name/);
    expect(check('my doe is a deer and fine')).toBeUndefined(); // "doe": too short a word to refuse
  });

  it('counts length in code points and checks the confirmation', () => {
    expect(check('😀'.repeat(11))).toMatch(/this one has 11/);
    expect(
      passwordProblem({ password: 'long enough passphrase', confirm: 'long enough passphrasE', username: 'jdoe' }),
    ).toMatch(/do not match/);
  });
});
