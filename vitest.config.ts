import { defineConfig } from 'vitest/config';

/**
 * Two projects, both run by `npm test` (and so by CI) in one vitest run:
 * - fast: in-process suites (units, guard, store, policy, tools, HTTP, adapters against in-process stand-ins) — no
 *   built CLI, no child process of ours, no browser, no slapd. `npm run test:fast`, a couple of minutes.
 * - e2e: whatever spawns the built CLI (dist/) or other servers, kills processes, drives Chromium or slapd, or runs
 *   long: test/e2e, test/crash, test/scenarios, test/conformance, test/fuzz, and the files listed below.
 *   `npm run test:e2e` (after `npm run build`).
 */
const E2E = [
  'test/e2e/**/*.test.ts',
  'test/crash/**/*.test.ts',
  'test/scenarios/**/*.test.ts',
  'test/conformance/**/*.test.ts',
  'test/fuzz/**/*.test.ts',
  // starts its own slapd
  'test/backends/ldap.test.ts',
  // run the built CLI (runCli / spawn of dist/cli.js)
  'test/config.test.ts',
  'test/log-pretty.test.ts',
  'test/store/audit-key.test.ts',
  'test/tools/hostile-input.test.ts',
  // 3,000 HTTP session initializes (~35 s)
  'test/http/sessions.test.ts',
  // start their own PostgreSQL server
  'test/store/pg-*.test.ts',
  'test/store/ports-contract.test.ts',
  'test/tools/kb-postgres.test.ts',
  'test/tools/domain-postgres.test.ts',
];

export default defineConfig({
  test: {
    testTimeout: 30_000,
    hookTimeout: 30_000,
    pool: 'forks',
    reporters: ['default'],
    projects: [
      { extends: true, test: { name: 'fast', include: ['test/**/*.test.ts'], exclude: E2E } },
      { extends: true, test: { name: 'e2e', include: E2E } },
    ],
  },
});
