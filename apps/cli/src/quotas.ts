/**
 * `kernelfleet quotas <command>` (`npm run quotas -- …`): a tenant's quota overrides in Redis
 * (docs/quotas.md).
 *
 *   set <tenant> name=value…   override quotas (names: see QUOTA_NAMES; positive integers)
 *   show <tenant>              overrides, the defaults of this environment, current usage
 *   clear <tenant>             drop every override (the defaults apply again)
 *   repair <tenant>            uncount executions that ended but are still counted (a crash)
 *
 * Reads REDIS_URL and KEY_PREFIX like the apps; overrides apply to the next submission.
 */
import { TENANT_PATTERN, isTerminal, type ExecutionStatus } from '@kernelfleet/contracts';
import { ConfigError, loadQuotaDefaults, loadStoreConfig, type QuotaLimits } from '@kernelfleet/config';
import { FleetStore, QUOTA_NAMES, isQuotaName } from '@kernelfleet/store';
import { UsageError } from './cli-args';

const USAGE = `usage: kernelfleet quotas set <tenant> name=value… | show <tenant> | clear <tenant> | repair <tenant>
quota names: ${QUOTA_NAMES.join(', ')}`;

function parseAssignments(args: string[]): Partial<QuotaLimits> {
  if (args.length === 0) throw new UsageError('set needs at least one name=value');
  const values: Partial<QuotaLimits> = {};
  for (const arg of args) {
    const [name, raw, extra] = arg.split('=');
    if (!isQuotaName(name) || raw === undefined || extra !== undefined) throw new UsageError(`"${arg}" is not name=value with a known quota name`);
    if (!/^[1-9][0-9]{0,15}$/.test(raw)) throw new UsageError(`${name}: must be a positive integer`);
    values[name] = Number(raw);
  }
  return values;
}

async function run(argv: string[]): Promise<void> {
  const [command, tenant, ...rest] = argv;
  if (!command || !['set', 'show', 'clear', 'repair'].includes(command)) throw new UsageError(command ? `unknown command ${command}` : 'no command');
  if (!tenant || !TENANT_PATTERN.test(tenant)) throw new UsageError('a tenant ([A-Za-z0-9_-]{1,64}) is required');
  if (command !== 'set' && rest.length) throw new UsageError(`${command} takes only a tenant`);
  const values = command === 'set' ? parseAssignments(rest) : {};
  const store = FleetStore.connect({ ...loadStoreConfig(), clientName: 'quotas-cli' });
  try {
    if (command === 'set') await store.quotas.setOverrides(tenant, values);
    if (command === 'clear') await store.quotas.clearOverrides(tenant);
    if (command === 'repair') {
      const released = await store.quotas.repair(tenant, async (ref) => {
        const status = await store.executions.status(ref);
        return status !== null && isTerminal(status as ExecutionStatus);
      });
      process.stdout.write(`released ${released} ended execution(s) still counted\n`);
    }
    const [overrides, usage] = await Promise.all([store.quotas.overrides(tenant), store.quotas.usage(tenant)]);
    const defaults = loadQuotaDefaults();
    process.stdout.write(`tenant ${tenant}\n`);
    for (const name of QUOTA_NAMES) {
      const override = overrides[name];
      const lowersOnly = name === 'maxCodeBytes' || name === 'maxTimeoutMs';
      const effective = override === undefined ? defaults[name] : lowersOnly ? Math.min(override, defaults[name]) : override;
      const note = override === undefined ? '(default)' : `(override ${override}${lowersOnly ? ', lowers only' : ''})`;
      process.stdout.write(`  ${name.padEnd(18)} ${String(effective).padStart(10)} ${note}\n`);
    }
    process.stdout.write(`  usage: ${usage.pending} pending execution(s), ${usage.liveSessions} live session(s)\n`);
    process.stdout.write('  (defaults are those of this shell\'s environment; the api applies its own)\n');
  } finally {
    await store.close();
  }
}

/** Exit codes: 0 done, 2 bad arguments, configuration or a failure. */
export async function quotasCommand(argv: string[]): Promise<number> {
  try {
    await run(argv);
    return 0;
  } catch (error) {
    if (error instanceof UsageError) process.stderr.write(`${error.message}\n${USAGE}\n`);
    else if (error instanceof ConfigError) process.stderr.write(`kernelfleet quotas: ${error.message}\n`);
    else process.stderr.write(`kernelfleet quotas failed: ${(error as Error).stack ?? error}\n`);
    return 2;
  }
}
