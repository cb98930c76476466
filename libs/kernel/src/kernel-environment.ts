/**
 * Variables copied from the host environment when present. Everything else (API keys, REDIS_URL,
 * tokens, unknown variables) is dropped, because kernels inherit the Jupyter server's environment
 * and run arbitrary code.
 *
 * Deliberately NOT copied:
 * - PYTHONPATH / PYTHONHOME: the venv alone defines what user code imports; a host PYTHONPATH could
 *   shadow packages or expose the service's own modules. Pass it in `extra` if really wanted.
 * - JUPYTER_* / IPYTHONDIR: the server's behaviour is fixed by python/kernelfleet_jupyter.py.
 * - LD_LIBRARY_PATH, proxies, cloud credentials: pass explicitly via `extra`.
 */
export const ALLOWED_HOST_VARIABLES: readonly string[] = [
  'PATH',
  'HOME',
  'LANG',
  'LANGUAGE',
  'TZ',
  'TMPDIR',
  'TEMP',
  'TMP',
  'USER',
  'LOGNAME',
  'SHELL',
  'TERM',
  'VIRTUAL_ENV',
];

/** `LC_ALL`, `LC_CTYPE`, ...: locale categories are copied too. */
const LOCALE_VARIABLE = /^LC_[A-Z]+$/;

const VALID_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;

/** Used when the host has no PATH at all. */
const FALLBACK_PATH = '/usr/local/bin:/usr/bin:/bin';

/**
 * Set on every kernel environment and not overridable by `extra`:
 * - unbuffered, UTF-8 stdio so output streams out while a cell runs;
 * - matplotlib's inline backend (what ipykernel would pick by itself), so figures still open at
 *   the end of a cell are sent as image/png display data. Forcing `Agg` would suppress them.
 */
export const FORCED_KERNEL_VARIABLES: Readonly<Record<string, string>> = {
  PYTHONUNBUFFERED: '1',
  PYTHONIOENCODING: 'utf-8',
  MPLBACKEND: 'module://matplotlib_inline.backend_inline',
};

/**
 * Builds the complete environment for the Jupyter server (and therefore its kernels) from an
 * allowlist of `source` (usually `process.env`), then `extra` (explicit caller choices, copied
 * as given), then {@link FORCED_KERNEL_VARIABLES}. Pure: `source` is not modified.
 *
 * @throws TypeError if an `extra` name is not a valid variable name or a value contains NUL.
 */
export function kernelEnvironment(
  source: NodeJS.ProcessEnv,
  extra: Readonly<Record<string, string>> = {},
): Record<string, string> {
  const env: Record<string, string> = {};
  for (const [name, value] of Object.entries(source)) {
    if (value === undefined) continue;
    if (ALLOWED_HOST_VARIABLES.includes(name) || LOCALE_VARIABLE.test(name)) env[name] = value;
  }
  if (!env.PATH) env.PATH = FALLBACK_PATH;
  for (const [name, value] of Object.entries(extra)) {
    if (!VALID_NAME.test(name)) throw new TypeError(`invalid environment variable name: ${JSON.stringify(name)}`);
    if (value.includes('\0')) throw new TypeError(`environment variable ${name} contains NUL`);
    env[name] = value;
  }
  return { ...env, ...FORCED_KERNEL_VARIABLES };
}
