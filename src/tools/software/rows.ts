/** The catalog and install-job rows and their mapping, shared by both embedded deploy adapters (SQLite, PostgreSQL). */
import type { InstallJob, Package, Platform } from '../../core/ports/deploy.js';

export interface PkgRow {
  id: string;
  name: string;
  publisher: string;
  versions: string;
  platforms: string;
  cost_usd: number;
  self_service: number;
  license_pool: number | null;
  description: string;
}

export interface JobRow {
  id: string;
  username: string;
  device_id: string;
  package: string;
  version: string;
  state: InstallJob['state'];
  created_at: number;
  updated_at: number;
}

export const toPkg = (r: PkgRow): Package => ({
  id: r.id,
  name: r.name,
  publisher: r.publisher,
  versions: JSON.parse(r.versions) as string[],
  platforms: JSON.parse(r.platforms) as Platform[],
  costUsd: r.cost_usd,
  selfService: r.self_service === 1,
  licensePool: r.license_pool,
  description: r.description,
});
