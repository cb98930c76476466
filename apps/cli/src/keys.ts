import { ConfigError, loadKeysCliConfig } from '@kernelfleet/config';
import type { ApiKeyInfo } from '@kernelfleet/contracts';
import { ApiKeyRepository } from '@kernelfleet/store';
import { parseKeysCommand, UsageError, USAGE, type KeysCommand } from './keys-command';

/**
 * `kernelfleet keys create|list|revoke …` (`npm run keys -- …`): manages the API keys stored in
 * Redis. Exit codes: 0 done, 1 failed (Redis unreachable, no such key), 2 bad arguments or
 * configuration.
 */

/** How long the CLI waits for Redis before giving up. */
const REDIS_TIMEOUT_MS = 5_000;

class Failure extends Error {}

const out = (line: string) => process.stdout.write(`${line}\n`);
const note = (line: string) => process.stderr.write(`${line}\n`);

function table(keys: ApiKeyInfo[]): string[] {
  const rows = [['KEY ID', 'TENANT', 'CREATED', 'LABEL'], ...keys.map((k) => [k.keyId, k.tenant, new Date(k.createdAt).toISOString(), k.label])];
  const widths = rows[0].map((_, c) => Math.max(...rows.map((r) => r[c].length)));
  return rows.map((r) => r.map((cell, c) => (c === r.length - 1 ? cell : cell.padEnd(widths[c]))).join('  ').trimEnd());
}

async function run(command: Exclude<KeysCommand, { command: 'help' }>, keys: ApiKeyRepository): Promise<void> {
  switch (command.command) {
    case 'create': {
      const created = await keys.create(command.tenant, command.label);
      out(`keyId   ${created.keyId}`);
      out(`tenant  ${created.tenant}`);
      out(`key     ${created.key}`);
      note('The key is shown this once: only its SHA-256 is stored. Use it as Authorization: Bearer <key>.');
      return;
    }
    case 'list': {
      const listed = await keys.list(command.tenant);
      if (listed.length === 0) note(command.tenant ? `no stored keys for tenant ${command.tenant}` : 'no stored keys');
      else table(listed).forEach(out);
      return;
    }
    case 'revoke': {
      const revoked = await keys.revoke(command.keyId);
      if (!revoked) throw new Failure(`no key with id ${command.keyId} (already revoked, or never created; see \`list\`)`);
      out(`revoked ${revoked.keyId} (tenant ${revoked.tenant}${revoked.label ? `, label "${revoked.label}"` : ''})`);
      note('api replicas refuse it within their API_KEY_CACHE_MS (5 s by default)');
      return;
    }
  }
}

export async function keysCommand(argv: string[]): Promise<number> {
  let command: KeysCommand;
  try {
    command = parseKeysCommand(argv);
  } catch (error) {
    if (!(error instanceof UsageError)) throw error;
    note(`keys: ${error.message}\n\n${USAGE}`);
    return 2;
  }
  if (command.command === 'help') {
    out(USAGE);
    return 0;
  }
  let config: { redisUrl: string; keyPrefix: string };
  try {
    config = loadKeysCliConfig();
  } catch (error) {
    if (!(error instanceof ConfigError)) throw error;
    note(`keys: ${error.message}`);
    return 2;
  }
  const keys = ApiKeyRepository.connect({ ...config, clientName: `keys-cli-${process.pid}` });
  const shownUrl = config.redisUrl.replace(/\/\/[^@/]*@/, '//***@');
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Failure(`Redis at ${shownUrl} did not answer within ${REDIS_TIMEOUT_MS / 1000} s`)), REDIS_TIMEOUT_MS);
  });
  try {
    await Promise.race([run(command, keys), timeout]);
    return 0;
  } catch (error) {
    const e = error as Error;
    const why = e.name === 'MaxRetriesPerRequestError' ? 'cannot be reached' : `failed: ${e.message}`;
    note(`keys: ${error instanceof Failure ? e.message : `Redis at ${shownUrl} ${why}`}`);
    return 1;
  } finally {
    clearTimeout(timer);
    keys.close();
  }
}
