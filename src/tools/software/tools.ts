import { z } from 'zod';
import { GuardError } from '../../core/errors.js';
import { defineTool } from '../../core/tool.js';
import { IdemKey, Reason, UserRef } from '../common.js';
import { untrusted } from '../untrusted.js';
import type { InstallJob } from '../../core/ports/deploy.js';

export const softwareCatalog = defineTool({
  name: 'software_catalog',
  title: 'List installable software',
  description:
    'Lists the software catalog: package ids, versions, platforms, cost per seat, whether it is self-service, and licence seats used. software_install accepts only these ids.',
  input: {
    query: z
      .string()
      .trim()
      .min(1)
      .max(100)
      .optional()
      .describe('Filter by words in id, name, publisher or description.'),
  },
  scope: 'software:read',
  effect: 'read',
  tier: 'auto',
  annotations: { readOnlyHint: true, destructiveHint: false, idempotentHint: true, openWorldHint: false },
  output: {
    packages: z.array(
      z.object({
        id: z.string(),
        name: z.string(),
        publisher: z.string(),
        versions: z.array(z.string()),
        platforms: z.array(z.string()),
        cost_usd: z.number(),
        self_service: z.boolean(),
        license_pool: z.number().nullable(),
        seats_used: z.number(),
      }),
    ),
  },
  summary: (a) => `List the software catalog${a.query ? ` for "${a.query}"` : ''}`,
  async run(a, ctx) {
    const items = await ctx.backends.deploy.catalog(a.query, { signal: ctx.signal });
    const lines = items.map(
      (p) =>
        `${p.id}: ${p.name} ${p.versions.join('/')} (${p.platforms.join(', ')}) — ${p.costUsd ? `$${p.costUsd.toFixed(2)}/seat` : 'free'}, ${p.selfService ? 'self-service' : 'needs IT approval'}${p.licensePool !== null ? `, seats ${p.seatsUsed}/${p.licensePool}` : ''}`,
    );
    return {
      text: items.length
        ? `${items.length} package(s):\n${untrusted('software catalog', lines.join('\n'))}`
        : 'No package matches.',
      data: {
        packages: items.map((p) => ({
          id: p.id,
          name: p.name,
          publisher: p.publisher,
          versions: p.versions,
          platforms: p.platforms,
          cost_usd: p.costUsd,
          self_service: p.selfService,
          license_pool: p.licensePool,
          seats_used: p.seatsUsed,
        })),
      },
    };
  },
});

/** What a job's state means for the agent: a remote install is "requested, pending" until the platform reports. */
export const jobText = (j: InstallJob): string =>
  j.state === 'requested' || j.state === 'pending'
    ? `Install job ${j.id}: ${j.package} ${j.version} on ${j.deviceId} for ${j.username} was requested and is pending — not installed yet; the device installs it at its next check-in. Check progress with request_status.`
    : j.state === 'failed' || j.state === 'timed_out'
      ? `Install job ${j.id}: ${j.package} ${j.version} on ${j.deviceId} for ${j.username} ${j.state === 'failed' ? 'failed' : 'timed out'}${j.error ? ` (${j.error})` : ''}.`
      : `Install job ${j.id}: ${j.package} ${j.version} on ${j.deviceId} for ${j.username} is ${j.state}. Check progress with request_status.`;

export const queued = (j: InstallJob) => ({
  text: jobText(j),
  data: {
    job_id: j.id,
    state: j.state,
    ...(j.error ? { error: j.error } : {}),
    package: j.package,
    version: j.version,
    device_id: j.deviceId,
    user: j.username,
  },
});

export const softwareInstall = defineTool({
  name: 'software_install',
  title: 'Install software on a user’s device',
  description:
    'Installs a catalog package (by id from software_catalog) on a device the user owns. Licensed packages need an IT approver: the call waits, then returns APPROVAL_PENDING with a request_id for request_status. Self-service packages only need the user’s confirmation.',
  input: {
    user: UserRef,
    package: z.string().regex(/^[a-z0-9][a-z0-9-]{0,63}$/, {
      error: 'must be a catalog id like adobe-acrobat-pro (see software_catalog)',
    }),
    version: z.string().min(1).max(32).optional(),
    device_id: z
      .string()
      // itguard's inventory ids (LT-1001) or a deployment platform's own (an Intune managed device GUID)
      .regex(/^([A-Z]{2}-\d{3,6}|[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})$/, {
        error: 'must be a device id like LT-1001 (or a managed device GUID)',
      })
      .optional(),
    reason: Reason,
    idempotency_key: IdemKey.optional(),
  },
  scope: 'software:install',
  effect: 'write',
  tier: 'approval',
  annotations: { readOnlyHint: false, destructiveHint: false, idempotentHint: true, openWorldHint: true },
  // Every field optional: a shadow-mode call answers { shadow } instead.
  output: {
    job_id: z.string().optional(),
    state: z.string().optional(),
    package: z.string().optional(),
    version: z.string().optional(),
    device_id: z.string().optional(),
    user: z.string().optional(),
    shadow: z.looseObject({}).optional(),
  },
  summary: (a) =>
    `Install ${a.package}${a.version ? ` ${a.version}` : ''} on ${a.device_id ?? 'the device'} of ${a.user}`,
  async resolve(a, { backends, toolPolicy, signal }) {
    const o = { signal };
    const pkg = await backends.deploy.getPackage(a.package, o);
    // Security: only catalog ids, never free text or installer URLs.
    if (!pkg)
      throw new GuardError(
        'INVALID_ARGUMENT',
        `package: "${a.package}" is not in the catalog; use an id from software_catalog.`,
        { details: { field: 'package' } },
      );
    const version = a.version ?? pkg.versions[0]!;
    if (!pkg.versions.includes(version)) {
      throw new GuardError(
        'INVALID_ARGUMENT',
        `version: ${pkg.id} is available in ${pkg.versions.join(', ')}, not ${version}.`,
        { details: { field: 'version' } },
      );
    }
    const user = await backends.directory.get(a.user, o);
    if (!user || user.username !== a.user)
      throw new GuardError('INVALID_ARGUMENT', `user: no user "${a.user}" in the directory.`, {
        details: { field: 'user' },
      });
    if (user.disabled) throw new GuardError('POLICY_DENIED', `user: ${a.user} is disabled.`);
    const devices = await backends.deploy.devicesOf(a.user, o);
    // Security: the device must be one of the user's own, as the deployment system lists them (every adapter).
    let device = a.device_id ? devices.find((d) => d.id === a.device_id) : undefined;
    if (a.device_id && (!device || device.owner !== a.user)) {
      throw new GuardError(
        'POLICY_DENIED',
        `device_id: ${a.device_id} does not belong to ${a.user} (their devices: ${devices.map((d) => d.id).join(', ') || 'none'}).`,
        {
          details: { field: 'device_id' },
        },
      );
    }
    if (!device) {
      const fitting = devices.filter((d) => pkg.platforms.includes(d.platform));
      if (fitting.length !== 1) {
        throw new GuardError(
          'INVALID_ARGUMENT',
          `device_id: required — ${a.user} has ${fitting.length ? `several devices for ${pkg.id}: ${fitting.map((d) => `${d.id} (${d.platform})`).join(', ')}` : `no ${pkg.platforms.join('/')} device`}.`,
          {
            details: { field: 'device_id' },
          },
        );
      }
      device = fitting[0]!;
    }
    if (!pkg.platforms.includes(device.platform)) {
      throw new GuardError(
        'POLICY_DENIED',
        `${pkg.name} does not run on ${device.platform} (${device.id}); it supports ${pkg.platforms.join(', ')}.`,
      );
    }
    if (pkg.licensePool !== null && (await backends.deploy.seatsUsed(pkg.id, o)) >= pkg.licensePool) {
      throw new GuardError('POLICY_DENIED', `All ${pkg.licensePool} licence seats of ${pkg.name} are in use.`, {
        details: { license_pool: pkg.licensePool },
      });
    }
    return {
      args: { version, device_id: device.id },
      resolved: {
        target: a.user,
        costUsd: pkg.costUsd,
        // Self-service catalog items need only the user's confirmation; everything else an approver.
        tier: pkg.selfService ? (toolPolicy.selfServiceTier ?? 'confirm') : (toolPolicy.tier ?? 'approval'),
      },
    };
  },
  async run(a, ctx) {
    return queued(
      await ctx.backends.deploy.install(
        { username: a.user, deviceId: a.device_id!, package: a.package, version: a.version! },
        { requestId: ctx.requestId, signal: ctx.signal },
      ),
    );
  },
  async recover(_a, ctx) {
    const j = await ctx.backends.deploy.findByRequest(ctx.requestId, { signal: ctx.signal });
    return j && queued(j);
  },
  // A replay reports the job as it is now (pending → installed | failed | timed out), not as it was.
  async current(_a, ctx) {
    const j = await ctx.backends.deploy.findByRequest(ctx.requestId, { signal: ctx.signal });
    return j && queued(j);
  },
});
