/**
 * The deployment port: the software catalog, devices and install jobs. Catalog-only installs, listed versions,
 * device ownership and licence seats are enforced above it (software/tools.ts), for every adapter.
 */
import type { CallOpts, ProbeReport, WriteOpts } from '../backend.js';

export type Platform = 'windows' | 'macos' | 'linux';

export interface Package {
  id: string;
  name: string;
  publisher: string;
  versions: string[];
  platforms: Platform[];
  costUsd: number;
  selfService: boolean;
  licensePool: number | null;
  description: string;
}

export interface Device {
  id: string;
  owner: string;
  hostname: string;
  platform: Platform;
  model: string;
}

export interface InstallJob {
  id: string;
  username: string;
  deviceId: string;
  package: string;
  version: string;
  /**
   * embedded: queued → installing → installed; a remote platform (Intune): requested → pending → installed |
   * failed | timed_out, as its install status report says (never "installed" before it does).
   */
  state: 'queued' | 'installing' | 'installed' | 'failed' | 'requested' | 'pending' | 'timed_out';
  createdAt: string;
  updatedAt: string;
  /** failed: the platform's own error (e.g. "0x87D1041C: the app was not detected after installation"). */
  error?: string;
}

export interface NewInstall {
  username: string;
  deviceId: string;
  package: string;
  version: string;
}

export interface DeployPort {
  readonly kind: string;
  catalog(query: string | undefined, o: CallOpts): Promise<(Package & { seatsUsed: number })[]>;
  getPackage(id: string, o: CallOpts): Promise<Package | undefined>;
  devicesOf(username: string, o: CallOpts): Promise<Device[]>;
  getDevice(id: string, o: CallOpts): Promise<Device | undefined>;
  seatsUsed(pkg: string, o: CallOpts): Promise<number>;
  /** Idempotent on requestId. Throws BackendError (not retryable) when the licence pool filled up meanwhile. */
  install(i: NewInstall, o: WriteOpts): Promise<InstallJob>;
  findByRequest(requestId: string, o: CallOpts): Promise<InstallJob | undefined>;
  /** A job in any state, read afresh where due (the console's view of an approved install); optional. */
  jobState?(requestId: string, o: CallOpts): Promise<InstallJob | undefined>;
  probe(o: CallOpts): Promise<ProbeReport>;
}
