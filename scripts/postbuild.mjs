/**
 * After tsc: bundles the CLI with esbuild. tsc's dist/ stays as it is (tests and benchmarks import its modules);
 * the bundle goes to dist/bundle/ (code split: each verb's module is a chunk loaded on first use, so `serve
 * --stdio` reads only its own code and the shared chunks), and dist/cli.js becomes a two-line entry that imports
 * dist/bundle/cli.js. The bundle sits one directory below dist/ like tsc's dist/demo/ and dist/commands/, so the
 * paths src computes from import.meta.url (../../kb, ../cli.js) resolve the same from either build.
 * better-sqlite3 stays external (a native addon, loaded from node_modules); the CommonJS packages inside the bundle
 * (yaml, pino, express, ...) get `require` from createRequire. The built-in demo policy is parsed from YAML here,
 * once, and inlined as data.
 */
import { chmodSync, rmSync, writeFileSync } from 'node:fs';
import { build } from 'esbuild';
import { parseDocument } from 'yaml';
import { DEMO_POLICY_YAML } from '../dist/policy/demo.js';

// The built-in policy as data (src/policy/load.ts demoPolicy): `serve` on it then needs no YAML parsing at start.
const demo = parseDocument(DEMO_POLICY_YAML, { uniqueKeys: true });
if (demo.errors.length) throw demo.errors[0];
const demoData = JSON.stringify(demo.toJS({ maxAliasCount: 100 }));

rmSync('dist/bundle', { recursive: true, force: true });
await build({
  entryPoints: { cli: 'src/cli.ts' },
  outdir: 'dist/bundle',
  bundle: true,
  splitting: true,
  format: 'esm',
  platform: 'node',
  target: 'node20',
  chunkNames: '[name]-[hash]',
  external: ['better-sqlite3'],
  define: { __ITGUARD_DEMO_POLICY_DATA__: demoData },
  banner: {
    js: "import { createRequire as __itguardRequire } from 'node:module'; const require = __itguardRequire(import.meta.url);",
  },
  legalComments: 'none',
  // Less source for V8 to scan at start; identifiers keep their names (errors and logs name classes).
  minifyWhitespace: true,
  minifySyntax: true,
  logLevel: 'warning',
});
writeFileSync(
  'dist/cli.js',
  "#!/usr/bin/env node\n// The CLI is bundled (scripts/postbuild.mjs): this entry loads it.\nimport './bundle/cli.js';\n",
);
// npm links bin files, but a direct ./dist/cli.js run needs the bit.
chmodSync('dist/cli.js', 0o755);
