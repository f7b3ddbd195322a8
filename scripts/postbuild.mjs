/**
 * After tsc: bundles the CLI with esbuild. tsc's dist/ stays as it is (tests and benchmarks import its modules);
 * the bundle goes to dist/bundle/ (code split: each verb's module is a chunk loaded on first use, so `serve
 * --stdio` reads only its own code and the shared chunks), and dist/cli.js becomes a two-line entry that imports
 * dist/bundle/cli.js. The bundle sits one directory below dist/ like tsc's dist/demo/ and dist/commands/, so the
 * paths src computes from import.meta.url (../../kb, ../cli.js) resolve the same from either build.
 * better-sqlite3 stays external (a native addon, loaded from node_modules); the CommonJS packages inside the bundle
 * (yaml, pino, express, ...) get `require` from createRequire.
 */
import { chmodSync, rmSync, writeFileSync } from 'node:fs';
import { build } from 'esbuild';

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
  banner: {
    js: "import { createRequire as __itguardRequire } from 'node:module'; const require = __itguardRequire(import.meta.url);",
  },
  legalComments: 'none',
  logLevel: 'warning',
});
writeFileSync(
  'dist/cli.js',
  "#!/usr/bin/env node\n// The CLI is bundled (scripts/postbuild.mjs): this entry loads it.\nimport './bundle/cli.js';\n",
);
// npm links bin files, but a direct ./dist/cli.js run needs the bit.
chmodSync('dist/cli.js', 0o755);
