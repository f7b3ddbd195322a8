/**
 * A real OpenLDAP slapd for the LDAP adapter tests, started on a free loopback port from a temporary directory:
 * cn=config built with `slapadd -n0` (slapd.d), an mdb database, the ppolicy overlay (pwdReset, hashed cleartext)
 * and memberof, ACLs that let the service account `cn=itguard,ou=svc,…` read people and groups and write
 * userPassword and pwdReset on people (it is not the root DN), and a read-only `cn=reader,ou=svc,…`.
 *
 * The `ad` variant is an Active-Directory-shaped directory (sAMAccountName, userAccountControl, pwdLastSet,
 * unicodePwd, memberOf as plain attributes of a small test schema): it checks what the adapter reads and writes
 * in its AD flavor, not Active Directory's own behaviour.
 *
 * slapd and slapadd come from the `slapd` package (CI installs it: .ci/run). Missing, they fail the suite with a
 * message saying so; nothing here skips.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { Client } from 'ldapts';

export type SlapdVariant = 'openldap' | 'ad';

export interface Slapd {
  variant: SlapdVariant;
  url: string;
  /** With `tls: true`: the ldaps:// URL (same data) and the PEM of the CA that signed its certificate. */
  ldapsUrl: string | undefined;
  caFile: string | undefined;
  port: number;
  dir: string;
  suffix: string;
  peopleDn: string;
  groupsDn: string;
  rootDn: string;
  rootPassword: string;
  svcDn: string;
  svcPassword: string;
  readerDn: string;
  readerPassword: string;
  /** The initial password of each user, by uid / sAMAccountName. */
  passwords: Record<string, string>;
  /** The DN of a user. */
  dn(user: string): string;
  /** Runs fn on a connection bound as the root DN (for checking what the adapter did). */
  asRoot<T>(fn: (c: Client) => Promise<T>): Promise<T>;
  /** True when `dn` binds with `password`. */
  canBind(dn: string, password: string): Promise<boolean>;
  /** Stops slapd (the data stays); start() brings it back on the same port. */
  stop(): Promise<void>;
  start(): Promise<void>;
  /** Stops slapd and removes the directory. */
  close(): Promise<void>;
  stderr(): string;
}

const SBIN = ['/usr/sbin', '/usr/local/sbin', '/usr/libexec', '/usr/local/libexec', '/opt/homebrew/sbin'];
const MODULE_DIRS = [
  '/usr/lib/ldap',
  '/usr/lib64/openldap',
  '/usr/lib/openldap',
  '/usr/libexec/openldap',
  '/usr/local/libexec/openldap',
  '/opt/homebrew/libexec/openldap',
];
const SCHEMA_DIRS = ['/etc/ldap/schema', '/etc/openldap/schema', '/usr/local/etc/openldap/schema'];
const INSTALL_HINT =
  'install it (Debian/Ubuntu: DEBIAN_FRONTEND=noninteractive apt-get install -y slapd ldap-utils; .ci/run does this)';

function findBinary(name: string): string {
  for (const dir of [...(process.env.PATH ?? '').split(path.delimiter), ...SBIN]) {
    if (dir && existsSync(path.join(dir, name))) return path.join(dir, name);
  }
  throw new Error(`OpenLDAP's ${name} was not found on PATH or in ${SBIN.join(', ')}: ${INSTALL_HINT}.`);
}

/** The module directory and the modules to load from it; those built into slapd (`slapd -VVV`) are not loaded. */
function findModules(slapd: string, wanted: string[]): { dir: string | undefined; load: string[] } {
  const v = spawnSync(slapd, ['-VVV'], { encoding: 'utf8' });
  const statics = new Set(
    `${v.stdout}\n${v.stderr}`
      .split('\n')
      .filter((l) => /^\s+\S+$/.test(l))
      .map((l) => l.trim()),
  );
  const load = wanted.filter((m) => !statics.has(m.replace(/^back_/, '')));
  if (!load.length) return { dir: undefined, load };
  const has = (d: string, m: string) => existsSync(path.join(d, `${m}.la`)) || existsSync(path.join(d, `${m}.so`));
  const dir = MODULE_DIRS.find((d) => load.every((m) => has(d, m)));
  if (!dir) throw new Error(`slapd modules ${load.join(', ')} were not found in ${MODULE_DIRS.join(', ')}.`);
  return { dir, load };
}

function findSchemaDir(): string {
  const d = SCHEMA_DIRS.find((x) => existsSync(path.join(x, 'core.ldif')));
  if (!d) throw new Error(`OpenLDAP schema files (core.ldif) not found in ${SCHEMA_DIRS.join(', ')}: ${INSTALL_HINT}.`);
  return d;
}

/** {SSHA} of a password, as slappasswd makes it. */
export function ssha(password: string): string {
  const salt = randomBytes(8);
  const digest = createHash('sha1').update(password).update(salt).digest();
  return `{SSHA}${Buffer.concat([digest, salt]).toString('base64')}`;
}

const secret = () => `${randomBytes(12).toString('base64url')}-Zz9`;

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address() as net.AddressInfo;
      s.close(() => resolve(port));
    });
  });
}

const ldif = (entries: Record<string, string | string[]>[]): string =>
  entries
    .map((e) =>
      Object.entries(e)
        .flatMap(([k, v]) => (Array.isArray(v) ? v : [v]).map((x) => `${k}: ${x}`))
        .join('\n'),
    )
    .join('\n\n') + '\n';

/** The AD-shaped test schema (OpenLDAP's experimental OID arc 1.3.6.1.4.1.4203.666). */
const AD_SCHEMA = `dn: cn=adshape,cn=schema,cn=config
objectClass: olcSchemaConfig
cn: adshape
olcAttributeTypes: ( 1.3.6.1.4.1.4203.666.11.90.1 NAME 'sAMAccountName' EQUALITY caseIgnoreMatch SUBSTR caseIgnoreSubstringsMatch SYNTAX 1.3.6.1.4.1.1466.115.121.1.15 SINGLE-VALUE )
olcAttributeTypes: ( 1.3.6.1.4.1.4203.666.11.90.2 NAME 'userPrincipalName' EQUALITY caseIgnoreMatch SYNTAX 1.3.6.1.4.1.1466.115.121.1.15 SINGLE-VALUE )
olcAttributeTypes: ( 1.3.6.1.4.1.4203.666.11.90.3 NAME 'userAccountControl' EQUALITY integerMatch SYNTAX 1.3.6.1.4.1.1466.115.121.1.27 SINGLE-VALUE )
olcAttributeTypes: ( 1.3.6.1.4.1.4203.666.11.90.4 NAME 'pwdLastSet' EQUALITY integerMatch SYNTAX 1.3.6.1.4.1.1466.115.121.1.27 SINGLE-VALUE )
olcAttributeTypes: ( 1.3.6.1.4.1.4203.666.11.90.5 NAME 'unicodePwd' EQUALITY octetStringMatch SYNTAX 1.3.6.1.4.1.1466.115.121.1.40 SINGLE-VALUE )
olcAttributeTypes: ( 1.3.6.1.4.1.4203.666.11.90.6 NAME 'memberOf' EQUALITY distinguishedNameMatch SYNTAX 1.3.6.1.4.1.1466.115.121.1.12 )
olcAttributeTypes: ( 1.3.6.1.4.1.4203.666.11.90.7 NAME 'allowedAttributesEffective' EQUALITY caseIgnoreMatch SYNTAX 1.3.6.1.4.1.1466.115.121.1.15 )
olcObjectClasses: ( 1.3.6.1.4.1.4203.666.11.90.100 NAME 'adShapedUser' AUXILIARY MAY ( sAMAccountName $ userPrincipalName $ userAccountControl $ pwdLastSet $ unicodePwd $ memberOf $ allowedAttributesEffective ) )
`;

/** A test CA and a server certificate for 127.0.0.1 / localhost, made with the openssl CLI. */
function makeCerts(dir: string): { ca: string; cert: string; key: string } {
  const f = (n: string) => path.join(dir, n);
  const run = (args: string[]) => {
    const r = spawnSync('openssl', args, { encoding: 'utf8' });
    if (r.error || r.status !== 0) {
      throw new Error(
        `openssl ${args[0]} failed (the ldaps tests need the openssl CLI): ${r.error?.message ?? r.stderr}`,
      );
    }
  };
  const ec = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes'];
  run([
    'req',
    '-x509',
    ...ec,
    '-keyout',
    f('ca.key'),
    '-out',
    f('ca.pem'),
    '-days',
    '2',
    '-subj',
    '/CN=itguard test CA',
  ]);
  run(['req', ...ec, '-keyout', f('server.key'), '-out', f('server.csr'), '-subj', '/CN=127.0.0.1']);
  writeFileSync(
    f('server.ext'),
    'subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n',
  );
  run(
    ['x509', '-req', '-in', f('server.csr'), '-CA', f('ca.pem'), '-CAkey', f('ca.key'), '-CAcreateserial'].concat([
      '-out',
      f('server.pem'),
      '-days',
      '2',
      '-extfile',
      f('server.ext'),
    ]),
  );
  return { ca: f('ca.pem'), cert: f('server.pem'), key: f('server.key') };
}

export async function startSlapd(variant: SlapdVariant = 'openldap', o: { tls?: boolean } = {}): Promise<Slapd> {
  const slapdBin = findBinary('slapd');
  const slapadd = findBinary('slapadd');
  const schemaDir = findSchemaDir();
  const ad = variant === 'ad';
  const modules = findModules(slapdBin, ad ? ['back_mdb'] : ['back_mdb', 'ppolicy', 'memberof']);

  const dir = mkdtempSync(path.join(os.tmpdir(), 'itguard-slapd-'));
  const confDir = path.join(dir, 'slapd.d');
  const dbDir = path.join(dir, 'db');
  mkdirSync(confDir);
  mkdirSync(dbDir);
  let certs: ReturnType<typeof makeCerts> | undefined;
  try {
    certs = o.tls ? makeCerts(dir) : undefined;
  } catch (e) {
    rmSync(dir, { recursive: true, force: true });
    throw e;
  }

  const suffix = ad ? 'dc=corp,dc=example,dc=com' : 'dc=example,dc=com';
  const peopleDn = `ou=people,${suffix}`;
  const groupsDn = `ou=groups,${suffix}`;
  const rootDn = `cn=admin,${suffix}`;
  const svcDn = `cn=itguard,ou=svc,${suffix}`;
  const readerDn = `cn=reader,ou=svc,${suffix}`;
  const rootPassword = secret();
  const svcPassword = secret();
  const readerPassword = secret();
  const userAttr = ad ? 'cn' : 'uid';
  const dn = (u: string) => `${userAttr}=${u},${peopleDn}`;

  const pwAttrs = ad ? 'unicodePwd,pwdLastSet' : 'pwdReset';
  const config = `dn: cn=config
objectClass: olcGlobal
cn: config
olcPidFile: ${path.join(dir, 'slapd.pid')}
${certs ? `olcTLSCACertificateFile: ${certs.ca}\nolcTLSCertificateFile: ${certs.cert}\nolcTLSCertificateKeyFile: ${certs.key}\n` : ''}
${
  modules.load.length
    ? `dn: cn=module{0},cn=config
objectClass: olcModuleList
cn: module{0}
${modules.dir ? `olcModulePath: ${modules.dir}\n` : ''}${modules.load.map((m) => `olcModuleLoad: ${m}`).join('\n')}

`
    : ''
}dn: cn=schema,cn=config
objectClass: olcSchemaConfig
cn: schema

include: file://${schemaDir}/core.ldif
include: file://${schemaDir}/cosine.ldif
include: file://${schemaDir}/inetorgperson.ldif
include: file://${schemaDir}/nis.ldif

${ad ? AD_SCHEMA : ''}
dn: olcDatabase={-1}frontend,cn=config
objectClass: olcDatabaseConfig
objectClass: olcFrontendConfig
olcDatabase: {-1}frontend

dn: olcDatabase={0}config,cn=config
objectClass: olcDatabaseConfig
olcDatabase: {0}config
olcAccess: {0}to * by * none

dn: olcDatabase={1}mdb,cn=config
objectClass: olcDatabaseConfig
objectClass: olcMdbConfig
olcDatabase: {1}mdb
olcSuffix: ${suffix}
olcRootDN: ${rootDn}
olcRootPW: ${ssha(rootPassword)}
olcDbDirectory: ${dbDir}
olcDbMaxSize: 33554432
olcDbIndex: objectClass eq
olcDbIndex: ${ad ? 'sAMAccountName,userPrincipalName' : 'uid'},cn,mail eq
olcDbIndex: member,uniqueMember,memberUid eq
olcAccess: {0}to dn.subtree="${peopleDn}" attrs=userPassword by self write by dn.exact="${svcDn}" write by anonymous auth by * none
olcAccess: {1}to attrs=userPassword by self write by anonymous auth by * none
olcAccess: {2}to dn.subtree="${peopleDn}" attrs=${pwAttrs} by dn.exact="${svcDn}" write by self read by dn.exact="${readerDn}" read by * none
olcAccess: {3}to dn.subtree="${peopleDn}" by self read by dn.exact="${svcDn}" read by dn.exact="${readerDn}" read by * none
olcAccess: {4}to dn.subtree="${groupsDn}" by dn.exact="${svcDn}" read by dn.exact="${readerDn}" read by users read by * none
olcAccess: {5}to * by self read by users search by * none
${
  ad
    ? ''
    : `
dn: olcOverlay={0}memberof,olcDatabase={1}mdb,cn=config
objectClass: olcOverlayConfig
objectClass: olcMemberOf
olcOverlay: {0}memberof
olcMemberOfRefInt: TRUE

dn: olcOverlay={1}ppolicy,olcDatabase={1}mdb,cn=config
objectClass: olcOverlayConfig
objectClass: olcPPolicyConfig
olcOverlay: {1}ppolicy
olcPPolicyDefault: cn=default,ou=policies,${suffix}
olcPPolicyHashCleartext: TRUE
`
}`;

  const passwords: Record<string, string> = {};
  const people: Record<string, string | string[]>[] = [];
  const person = (u: string, cn: string, extra: Record<string, string | string[]> = {}) => {
    passwords[u] = secret();
    const [given = cn, sn = cn] = cn.split(' ');
    people.push({
      dn: dn(u),
      objectClass: ad ? ['inetOrgPerson', 'adShapedUser'] : ['inetOrgPerson'],
      ...(ad ? { sAMAccountName: u, userPrincipalName: `${u}@corp.example.com` } : { uid: u }),
      cn: ad ? u : cn,
      givenName: given,
      sn,
      displayName: cn,
      mail: `${u}@example.com`,
      userPassword: ssha(passwords[u]),
      ...extra,
    });
  };
  const groups: Record<string, string | string[]>[] = [];
  if (ad) {
    const memberOf = (...g: string[]) => ({ memberOf: g.map((x) => `cn=${x},${groupsDn}`) });
    const uac = (n: number) => ({ userAccountControl: String(n), pwdLastSet: '133000000000000000' });
    const may = { allowedAttributesEffective: ['pwdLastSet', 'lockoutTime', 'description'] };
    person('jdoe', 'John Doe', { ...uac(512), ...memberOf('staff'), ...may });
    person('aadmin', 'Ann Admin', { ...uac(512), ...memberOf('Domain Admins', 'staff'), ...may });
    person('bgone', 'Bob Gone', { ...uac(514), ...memberOf('staff') });
    person('mlopez', 'Maria Lopez', { ...uac(512), ...memberOf('staff'), ...may });
    groups.push(
      { dn: `cn=Domain Admins,${groupsDn}`, objectClass: 'groupOfNames', cn: 'Domain Admins', member: dn('aadmin') },
      {
        dn: `cn=staff,${groupsDn}`,
        objectClass: 'groupOfNames',
        cn: 'staff',
        member: ['jdoe', 'aadmin', 'bgone', 'mlopez'].map(dn),
      },
    );
  } else {
    person('jdoe', 'John Doe', { mobile: '+1 555 0100 34' });
    person('asmith', 'Alice Smith');
    person('aadmin', 'Ann Admin');
    person('bgone', 'Bob Gone', { pwdAccountLockedTime: '000001010000Z' }); // locked by an administrator
    person('cfrozen', 'Carl Frozen', { employeeType: 'disabled' });
    person('mlopez', 'Maria Lopez');
    groups.push(
      { dn: `cn=admins,${groupsDn}`, objectClass: 'groupOfNames', cn: 'admins', member: dn('aadmin') },
      {
        dn: `cn=staff,${groupsDn}`,
        objectClass: 'groupOfNames',
        cn: 'staff',
        member: ['jdoe', 'asmith', 'aadmin', 'mlopez'].map(dn),
      },
      { dn: `cn=vpn,${groupsDn}`, objectClass: 'groupOfUniqueNames', cn: 'vpn', uniqueMember: dn('asmith') },
      {
        dn: `cn=developers,${groupsDn}`,
        objectClass: 'posixGroup',
        cn: 'developers',
        gidNumber: '5001',
        memberUid: 'jdoe',
      },
    );
  }
  const ou = (name: string) => ({ dn: `ou=${name},${suffix}`, objectClass: 'organizationalUnit', ou: name });
  const data = ldif([
    { dn: suffix, objectClass: ['dcObject', 'organization'], dc: ad ? 'corp' : 'example', o: 'Example' },
    ou('people'),
    ou('groups'),
    ou('svc'),
    ...(ad
      ? []
      : [
          ou('policies'),
          {
            dn: `cn=default,ou=policies,${suffix}`,
            objectClass: ['organizationalRole', 'pwdPolicy'],
            cn: 'default',
            pwdAttribute: 'userPassword',
            pwdMustChange: 'TRUE',
            pwdAllowUserChange: 'TRUE',
            pwdCheckQuality: '1',
            pwdMinLength: '8',
            pwdInHistory: '2',
            pwdLockout: 'TRUE',
            pwdMaxFailure: '50',
          },
        ]),
    {
      dn: svcDn,
      objectClass: ['organizationalRole', 'simpleSecurityObject'],
      cn: 'itguard',
      userPassword: ssha(svcPassword),
    },
    {
      dn: readerDn,
      objectClass: ['organizationalRole', 'simpleSecurityObject'],
      cn: 'reader',
      userPassword: ssha(readerPassword),
    },
    ...people,
    // AD-shaped: groups and static memberOf go in offline. OpenLDAP: groups are added online (below), so the
    // memberof overlay writes memberOf as it would in production.
    ...(ad ? groups : []),
  ]);
  writeFileSync(path.join(dir, 'config.ldif'), config);
  writeFileSync(path.join(dir, 'data.ldif'), data);
  const add = (args: string[], file: string) => {
    const r = spawnSync(slapadd, [...args, '-F', confDir, '-l', path.join(dir, file)], { encoding: 'utf8' });
    if (r.status !== 0) {
      rmSync(dir, { recursive: true, force: true });
      throw new Error(`slapadd ${args.join(' ')} of ${file} failed (${r.status}): ${r.stderr || r.error?.message}`);
    }
  };
  add(['-n0'], 'config.ldif');
  add(['-n1', '-q'], 'data.ldif');

  let port = 0;
  let url = '';
  let ldapsUrl: string | undefined;
  let proc: ChildProcess | undefined;
  let err = '';
  const killOnExit = () => proc?.kill('SIGKILL');
  process.once('exit', killOnExit);

  const client = (): Client => new Client({ url, timeout: 3000, connectTimeout: 3000 });
  const canBind = async (bindDn: string, password: string): Promise<boolean> => {
    const c = client();
    try {
      await c.bind(bindDn, password);
      return true;
    } catch (e) {
      if ((e as { code?: unknown }).code === 49) return false;
      throw e;
    } finally {
      await c.unbind().catch(() => undefined);
    }
  };
  const asRoot = async <T>(fn: (c: Client) => Promise<T>): Promise<T> => {
    const c = client();
    try {
      await c.bind(rootDn, rootPassword);
      return await fn(c);
    } finally {
      await c.unbind().catch(() => undefined);
    }
  };

  const launch = async (): Promise<void> => {
    err = '';
    const listen = [`${url}/`, ...(ldapsUrl ? [`${ldapsUrl}/`] : [])].join(' ');
    const p = spawn(slapdBin, ['-F', confDir, '-h', listen, '-d', '0'], { stdio: ['ignore', 'pipe', 'pipe'] });
    proc = p;
    p.stdout!.on('data', (d: Buffer) => (err += d.toString()));
    p.stderr!.on('data', (d: Buffer) => (err += d.toString()));
    let exited = false;
    p.once('exit', () => (exited = true));
    const deadline = Date.now() + 10_000;
    for (;;) {
      if (exited) throw new Error(`slapd exited with ${p.exitCode ?? p.signalCode} while starting:\n${err}`);
      try {
        if (await canBind(svcDn, svcPassword)) return;
        throw new Error('the service account does not bind');
      } catch (e) {
        if (Date.now() > deadline)
          throw new Error(`slapd did not accept binds on ${url} in 10 s: ${String(e)}\n${err}`);
      }
      await new Promise((r) => setTimeout(r, 50));
    }
  };
  const stop = async (): Promise<void> => {
    const p = proc;
    if (!p || p.exitCode !== null || p.signalCode !== null) return;
    await new Promise<void>((resolve) => {
      const t = setTimeout(() => p.kill('SIGKILL'), 5000);
      p.once('exit', () => (clearTimeout(t), resolve()));
      p.kill('SIGTERM');
    });
  };

  // The port is free when asked for; another process could take it before slapd binds, so try a few.
  for (let attempt = 1; ; attempt++) {
    port = await freePort();
    url = `ldap://127.0.0.1:${port}`;
    ldapsUrl = certs ? `ldaps://127.0.0.1:${await freePort()}` : undefined;
    try {
      await launch();
      break;
    } catch (e) {
      await stop();
      if (attempt >= 3) {
        rmSync(dir, { recursive: true, force: true });
        throw e;
      }
    }
  }

  if (!ad)
    await asRoot(async (c) => {
      for (const { dn: gdn, ...attrs } of groups) await c.add(gdn as string, attrs);
    });

  return {
    variant,
    url,
    ldapsUrl,
    caFile: certs?.ca,
    port,
    dir,
    suffix,
    peopleDn,
    groupsDn,
    rootDn,
    rootPassword,
    svcDn,
    svcPassword,
    readerDn,
    readerPassword,
    passwords,
    dn,
    asRoot,
    canBind,
    stop,
    start: launch,
    close: async () => {
      await stop();
      process.removeListener('exit', killOnExit);
      rmSync(dir, { recursive: true, force: true });
    },
    stderr: () => err,
  };
}
