/**
 * Protected Resource Metadata (RFC 9728) at /.well-known/oauth-protected-resource and …/mcp (and at the path the
 * audience itself implies, when a proxy serves /mcp under another path). Public, so any origin may read it (CORS
 * `*`: browser-based MCP clients fetch it before they have a token); it is mounted before the Origin check.
 */
import express from 'express';
import { PRM_PATH, protectedResourceMetadata, resourceMetadataUrl } from '../auth/metadata.js';
import type { AuthPolicy } from '../policy/auth.js';

export function resourceMetadataRouter(auth: AuthPolicy): express.Router {
  const router = express.Router();
  const doc = protectedResourceMetadata(auth);
  const paths = [...new Set([PRM_PATH, `${PRM_PATH}/mcp`, new URL(resourceMetadataUrl(auth.audience)).pathname])];
  router.options(paths, (_req, res) => {
    res.set({
      'Access-Control-Allow-Origin': '*',
      'Access-Control-Allow-Methods': 'GET, OPTIONS',
      'Access-Control-Allow-Headers': 'mcp-protocol-version',
      'Access-Control-Max-Age': '86400',
    });
    res.status(204).end();
  });
  router.get(paths, (_req, res) => {
    res.set({ 'Access-Control-Allow-Origin': '*', 'Cache-Control': 'public, max-age=300' });
    res.json(doc);
  });
  return router;
}
