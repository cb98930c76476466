import { KEY_ID_PATTERN, KEY_LABEL_PATTERN, TENANT_PATTERN } from '@kernelfleet/contracts';
import { UsageError } from './cli-args';

export const USAGE = `usage: kernelfleet keys <command>   (or: npm run keys -- <command>)

  create <tenant> [--label <text>]   create a key for the tenant; prints it once, with its id
  list [tenant]                      list stored keys (id, tenant, created, label)
  revoke <keyId>                     revoke a key; api replicas refuse it within API_KEY_CACHE_MS (5 s)

Redis is found through REDIS_URL and KEY_PREFIX, as the api and worker find it.`;

export type KeysCommand =
  | { command: 'create'; tenant: string; label: string }
  | { command: 'list'; tenant?: string }
  | { command: 'revoke'; keyId: string }
  | { command: 'help' };

export { UsageError };

const TENANT_RULE = 'tenant names are 1-64 characters of A-Z a-z 0-9 _ -';

function tenantArg(value: string | undefined, what: string): string {
  if (value === undefined) throw new UsageError(`${what}: missing <tenant>`);
  if (!TENANT_PATTERN.test(value)) throw new UsageError(`${what}: "${value}" is not a tenant name (${TENANT_RULE})`);
  return value;
}

function noMore(rest: string[], what: string): void {
  if (rest.length > 0) throw new UsageError(`${what}: unexpected argument "${rest[0]}"`);
}

/** Parses the arguments after `kernelfleet keys`. Throws UsageError naming what is wrong. */
export function parseKeysCommand(argv: string[]): KeysCommand {
  const [command, ...args] = argv;
  switch (command) {
    case undefined:
      throw new UsageError('missing command');
    case 'help':
    case '--help':
    case '-h':
      return { command: 'help' };
    case 'create': {
      let label = '';
      let labelSeen = false;
      const positional: string[] = [];
      for (let i = 0; i < args.length; i++) {
        const arg = args[i];
        if (arg === '--label' || arg.startsWith('--label=')) {
          if (labelSeen) throw new UsageError('create: --label given twice');
          labelSeen = true;
          const value = arg === '--label' ? args[++i] : arg.slice('--label='.length);
          if (value === undefined) throw new UsageError('create: --label needs a value');
          if (!KEY_LABEL_PATTERN.test(value)) throw new UsageError('create: --label must be at most 100 characters, no control characters');
          label = value;
        } else if (arg.startsWith('-')) {
          throw new UsageError(`create: unknown option "${arg}"`);
        } else {
          positional.push(arg);
        }
      }
      const [tenant, ...rest] = positional;
      const checked = tenantArg(tenant, 'create');
      noMore(rest, 'create');
      return { command: 'create', tenant: checked, label };
    }
    case 'list': {
      const [tenant, ...rest] = args;
      if (tenant?.startsWith('-')) throw new UsageError(`list: unknown option "${tenant}"`);
      const checked = tenant === undefined ? undefined : tenantArg(tenant, 'list');
      noMore(rest, 'list');
      return checked === undefined ? { command: 'list' } : { command: 'list', tenant: checked };
    }
    case 'revoke': {
      const [keyId, ...rest] = args;
      if (keyId === undefined) throw new UsageError('revoke: missing <keyId> (see `list`)');
      if (!KEY_ID_PATTERN.test(keyId)) throw new UsageError(`revoke: "${keyId}" is not a key id (16 lowercase hex characters, see \`list\`)`);
      noMore(rest, 'revoke');
      return { command: 'revoke', keyId };
    }
    default:
      throw new UsageError(`unknown command "${command}"`);
  }
}
