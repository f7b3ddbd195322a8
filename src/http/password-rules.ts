/**
 * What the reset page accepts as a new password, and why it refuses one, in words for the user.
 *
 * Rules, after NIST SP 800-63B §5.1.1.2: a minimum length, no composition rules, and a check against passwords
 * attackers try first — the most common ones and the user's own names. Compared case-insensitively after Unicode
 * NFKC. Also refused: a password made only of whitespace, and any control character (tab, line break, NUL ...),
 * which sign-in screens and terminals cannot type or silently drop.
 */

export const MIN_LENGTH = 12;

/**
 * About 100 of the most used passwords, from the well-known public top lists (NCSC's "100,000 Pwned Passwords",
 * SplashData / NordPass yearly lists). Most are shorter than MIN_LENGTH; they also catch their padded forms, since
 * digits and symbols around a common word are stripped before the comparison ("Password123!" → "password"), and
 * a word said twice is compared once ("letmein letmein").
 */
const COMMON = new Set(
  `123456 123456789 12345678 12345 1234567 1234567890 123123 111111 000000 654321 666666 121212 112233 123321
  987654321 1q2w3e4r 1q2w3e4r5t 1qaz2wsx qwerty qwerty123 qwertyuiop qwertyuiop123 asdfgh asdfghjkl zxcvbnm
  password password1 password12 password123 passw0rd p@ssw0rd p@ssword pa55word letmein letmein123 welcome welcome1
  welcome123 admin admin123 administrator root toor changeme changeme123 default guest login master secret
  iloveyou iloveyou1 princess monkey dragon football baseball basketball soccer hockey superman batman trustno1
  sunshine shadow michael jennifer jordan hunter charlie thomas daniel jessica ashley abc123 abcdef abcdefg
  abcdefgh abcd1234 aa123456 a1b2c3 a1b2c3d4 qazwsx starwars whatever freedom hello hello123 summer winter spring
  autumn killer pokemon computer internet samsung google mustang access flower cheese chocolate liverpool arsenal
  chelsea matrix ninja azerty solo loveme lovely zaq12wsx passport office company`.split(/\s+/),
);

/** Runs along the keyboard or the alphabet: "123456789012", "qwertyuiopas", "abcdefghijkl". */
const RUNS = ['0123456789'.repeat(3), 'qwertyuiopasdfghjklzxcvbnm', 'abcdefghijklmnopqrstuvwxyz'].flatMap((r) => [
  r,
  [...r].reverse().join(''),
]);
const isRun = (w: string) => w.length >= 6 && RUNS.some((r) => r.includes(w));

export interface Candidate {
  password: string;
  confirm: unknown;
  username: string;
  displayName?: string | undefined;
}

/** undefined when the password may be used; else the reason, written for the person choosing it. */
export function passwordProblem(c: Candidate): string | undefined {
  const pw = c.password;
  if (pw.length === 0) return 'Enter a new password.';
  if (pw !== c.confirm) return 'The two passwords do not match. Type the same password in both fields.';
  if (/^[\s\p{Cc}\p{Cf}]*$/u.test(pw)) return 'A password made only of spaces or invisible characters is not allowed.';
  // eslint-disable-next-line no-control-regex -- the point is to find control characters
  if (/[\u0000-\u001f\u007f-\u009f]/.test(pw)) {
    return 'The password contains a control character (such as a tab or a line break), which sign-in screens cannot take.';
  }
  const length = [...pw].length; // code points, not UTF-16 units
  if (length < MIN_LENGTH)
    return `Use at least ${MIN_LENGTH} characters (this one has ${length}). A few words make a good one.`;
  const folded = pw.normalize('NFKC').toLowerCase();
  const compact = folded.replace(/[\s._-]+/g, '');
  const core = folded.replace(/^[^\p{L}]+|[^\p{L}]+$/gu, ''); // the word inside digits and symbols
  const trimmed = folded.replace(/^[^\p{L}\p{N}]+|[^\p{L}\p{N}]+$/gu, ''); // "1q2w3e4r5t!!!!" → "1q2w3e4r5t"
  const repeated = /^(.+?)\1+$/u.exec(compact)?.[1]; // "letmeinletmein" → "letmein"
  if ([folded, compact, core, trimmed, repeated].some((w) => w !== undefined && (COMMON.has(w) || isRun(w)))) {
    return 'This is one of the most common passwords (or one with a few digits or symbols added): attackers try those first.';
  }
  if (containsName(compact, c.username, c.displayName)) {
    return 'The password contains your user name or your name: attackers try those first.';
  }
  return undefined;
}

/**
 * The user name (3+ characters), the whole display name, or one of its words of 4+ characters, anywhere in the
 * password. Words of 3 or fewer are left out: refusing "doe" would refuse "does" and "doesn't" for Jane Doe.
 */
function containsName(compact: string, username: string, displayName = ''): boolean {
  const fold = (s: string) => s.normalize('NFKC').toLowerCase();
  const user = fold(username).replace(/[\s._-]+/g, '');
  const words = fold(displayName)
    .split(/[\s,.'’_-]+/u)
    .filter((w) => [...w].length >= 4);
  const whole = fold(displayName).replace(/[\s,.'’_-]+/gu, '');
  return [user.length >= 3 ? user : '', whole.length >= 3 ? whole : '', ...words].some((n) => n && compact.includes(n));
}
