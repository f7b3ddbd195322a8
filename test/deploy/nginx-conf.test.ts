/**
 * deploy/nginx/itguard.conf and the test helper that runs it (test/helpers/nginx.ts) agree: the shipped replica block
 * is exactly what `replicaBlock` writes for the file's example replicas, so the e2e tests run the shipped routing.
 * nginx itself checks and runs the file in test/e2e/replicas-http.test.ts.
 */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { DEPLOY_CONF, replicaBlock, replicaBlockOf, siteConf } from '../helpers/nginx.js';

const shipped = readFileSync(DEPLOY_CONF, 'utf8');

describe('deploy/nginx/itguard.conf', () => {
  it('its replica block is replicaBlock of its example replicas (r1..r3 on 10.0.0.11..13:3333)', () => {
    const examples = [1, 2, 3].map((i) => ({ id: `r${i}`, address: `10.0.0.1${i}:3333` }));
    expect(replicaBlockOf(shipped)).toBe(replicaBlock(examples));
  });

  it('routes by the session id’s (or console cookie’s) prefix and passes SSE through unbuffered', () => {
    expect(shipped).toContain('map "$http_mcp_session_id $cookie_itguard_console" $itguard_replica {');
    expect(shipped).toContain('"~^(?<itguard_sid_replica>[a-z0-9-]+)\\."');
    expect(shipped).toContain('proxy_pass http://$itguard_upstream;');
    for (const d of [
      'proxy_buffering off;',
      'proxy_http_version 1.1;',
      'proxy_set_header Connection "";',
      'proxy_read_timeout 1h;',
    ])
      expect(shipped).toContain(d);
  });

  it('siteConf fills in the test replicas, the port and the access log, and keeps the rest', () => {
    const site = siteConf([{ id: 'a', address: '127.0.0.1:1' }], '127.0.0.1:8080', '/tmp/x/access.log');
    expect(site).toContain('listen 127.0.0.1:8080;');
    expect(site).toContain('access_log /tmp/x/access.log itguard;');
    expect(site).toContain('upstream itguard_a {');
    expect(site).not.toContain('10.0.0.11');
    expect(site).toContain('proxy_buffering off;');
  });
});
