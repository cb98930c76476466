/** A mistake in the command line: printed with the usage, exit code 2. */
export class UsageError extends Error {}

/** Options of a command: `--name value`, `--name=value`, or a bare `--flag`; the rest are operands. */
export interface ParsedArgs {
  operands: string[];
  values: Map<string, string>;
  flags: Set<string>;
}

/**
 * Splits `argv` by the command's `valued` options (which take a value) and `flags` (which
 * don't). `-` is an operand (standard input); `--` ends the options.
 */
export function parseArgs(argv: string[], valued: readonly string[], flags: readonly string[], what: string): ParsedArgs {
  const parsed: ParsedArgs = { operands: [], values: new Map(), flags: new Set() };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    if (arg === '--') {
      parsed.operands.push(...argv.slice(i + 1));
      break;
    }
    if (!arg.startsWith('--')) {
      if (arg.length > 1 && arg.startsWith('-')) throw new UsageError(`${what}: unknown option "${arg}"`);
      parsed.operands.push(arg);
      continue;
    }
    const eq = arg.indexOf('=');
    const name = arg.slice(2, eq < 0 ? undefined : eq);
    if (flags.includes(name)) {
      if (eq >= 0) throw new UsageError(`${what}: --${name} takes no value`);
      parsed.flags.add(name);
    } else if (valued.includes(name)) {
      const value = eq >= 0 ? arg.slice(eq + 1) : argv[++i];
      if (value === undefined) throw new UsageError(`${what}: --${name} needs a value`);
      if (parsed.values.has(name)) throw new UsageError(`${what}: --${name} given twice`);
      parsed.values.set(name, value);
    } else {
      throw new UsageError(`${what}: unknown option "--${name}"`);
    }
  }
  return parsed;
}

/** Where the api is and the key to it: `--url`/`--key`, else KERNELFLEET_URL/KERNELFLEET_API_KEY. */
export function apiTarget(args: ParsedArgs, env: NodeJS.ProcessEnv, what: string): { baseUrl: string; apiKey: string } {
  const baseUrl = args.values.get('url') ?? env.KERNELFLEET_URL;
  const apiKey = args.values.get('key') ?? env.KERNELFLEET_API_KEY;
  if (!baseUrl) throw new UsageError(`${what}: no api: give --url or set KERNELFLEET_URL (npm start prints it)`);
  if (!/^https?:\/\/[^\s]+$/.test(baseUrl)) throw new UsageError(`${what}: "${baseUrl}" is not an http(s) URL`);
  if (!apiKey) throw new UsageError(`${what}: no API key: give --key or set KERNELFLEET_API_KEY (npm start prints it)`);
  return { baseUrl, apiKey };
}

/** A positive integer option (milliseconds, counts), or undefined when absent. */
export function positiveInt(args: ParsedArgs, name: string, what: string): number | undefined {
  const raw = args.values.get(name);
  if (raw === undefined) return undefined;
  if (!/^[1-9][0-9]{0,15}$/.test(raw)) throw new UsageError(`${what}: --${name} must be a positive integer, got "${raw}"`);
  return Number(raw);
}
