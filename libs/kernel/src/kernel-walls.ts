import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { createInterface } from 'node:readline';
import { findLauncherScript, sandboxLaunchSettings, type KernelSandboxSettings } from './jupyter-server';

const HOLD_ANSWER_MS = 15_000;
const CHECK_TIMEOUT_MS = 60_000;

/** Settings of python/kernelfleet_netwall.py: the kernels' uid range and what they may reach. */
export interface NetworkWallSettings {
  python: string;
  uidBase: number;
  uidCount: number;
  network: 'public' | 'none';
  denyExtra: string[];
}

/** The host's running workers hold the rules with other settings (uid range, network, ranges). */
export class NetworkWallsConflictError extends Error {
  override readonly name = 'NetworkWallsConflictError';
}

/** The nftables rules held for as long as this worker runs; `release()` lets go of them. */
export interface NetworkWallHold {
  release(): Promise<void>;
}

/**
 * Installs (or joins) the nftables table that keeps the kernel uids off this host's services
 * and private networks (python/kernelfleet_netwall.py), and holds it until `release()` or until
 * this process ends, whichever comes first. The last worker of the host to let go removes it.
 *
 * @throws NetworkWallsConflictError when the host's other workers hold the rules with other
 *   settings; Error saying why they could not be installed (no `nft`, no CAP_NET_ADMIN).
 */
export async function holdNetworkWalls(settings: NetworkWallSettings): Promise<NetworkWallHold> {
  const script = join(dirname(findLauncherScript()), 'kernelfleet_netwall.py');
  const launch = {
    uid_base: settings.uidBase,
    uid_count: settings.uidCount,
    network: settings.network,
    deny_extra: settings.denyExtra,
  };
  // stdin stays open: its end (release, or this process's death) tells the holder to let go.
  const child = spawn(settings.python, [script, 'hold', JSON.stringify(launch)], { stdio: ['pipe', 'pipe', 'pipe'] });
  child.stdin.on('error', () => undefined);
  let stderr = '';
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  const exited = new Promise<void>((resolve) => child.once('close', () => resolve()));
  const firstLine = new Promise<string>((resolve, reject) => {
    createInterface({ input: child.stdout }).once('line', resolve);
    child.once('error', reject);
    void exited.then(() => reject(new Error(stderr.trim() || 'kernelfleet_netwall.py ended without an answer')));
    setTimeout(() => reject(new Error(`kernelfleet_netwall.py did not answer within ${HOLD_ANSWER_MS} ms`)), HOLD_ANSWER_MS).unref();
  });
  let answer: { ok: boolean; error?: string; conflict?: boolean };
  try {
    answer = JSON.parse(await firstLine) as typeof answer;
  } catch (error) {
    child.kill('SIGKILL');
    throw error;
  }
  if (!answer.ok) {
    const message = answer.error ?? 'kernelfleet_netwall.py refused';
    throw answer.conflict ? new NetworkWallsConflictError(message) : new Error(message);
  }
  child.unref();
  return {
    release: async () => {
      child.stdin.end();
      await exited;
    },
  };
}

/** What a kernel started in the sandbox could do, as the kernel itself saw it. */
export interface KernelReach {
  /** The uid the check ran as (a kernel's). */
  uid: number;
  /** Whether a listener on this host's loopback accepted the kernel's connection. */
  loopback: boolean;
  /** Those of the given targets (`host:port`) that accepted a connection. */
  reached: string[];
  /** Whether a file the worker left in /tmp was visible to the kernel. */
  sharedTmp: boolean;
  /** Why the sandbox could not make the kernel's /tmp and the like private, when it could not. */
  placesNotice?: string;
}

/**
 * Starts python/kernelfleet_wallcheck.py exactly as the Jupyter server starts a kernel (same
 * interpreter, sandbox, environment and folder) and reports what it could reach: a listener
 * this function opens on 127.0.0.1, each of `targets`, and a file it leaves in /tmp.
 */
export async function checkKernelReach(opts: {
  python: string;
  rootDir: string;
  sandbox: KernelSandboxSettings;
  env: Record<string, string>;
  targets: { host: string; port: number }[];
}): Promise<KernelReach> {
  const scripts = dirname(findLauncherScript());
  const canary = await listenOnLoopback();
  const marker = join(existsSync('/tmp') ? '/tmp' : tmpdir(), `kernelfleet-wallcheck-${randomBytes(6).toString('hex')}`);
  writeFileSync(marker, '', { mode: 0o644 });
  try {
    const canaryTarget = `127.0.0.1:${canary.port}`;
    const check = { targets: [['127.0.0.1', canary.port], ...opts.targets.map((t) => [t.host, t.port])], marker };
    const argv = [
      join(scripts, 'kernelfleet_sandbox.py'),
      JSON.stringify(sandboxLaunchSettings(opts.sandbox)),
      '--',
      opts.python,
      join(scripts, 'kernelfleet_wallcheck.py'),
      JSON.stringify(check),
    ];
    const { stdout, stderr, code } = await run(opts.python, argv, opts.rootDir, opts.env);
    const line = stdout.trim().split('\n').pop() ?? '';
    let seen: { uid: number; reached: string[]; sharedTmp: boolean };
    try {
      seen = JSON.parse(line) as typeof seen;
    } catch {
      throw new Error(`the kernel reach check failed (exit ${code}): ${(stderr.trim() || stdout.trim()).slice(-400)}`);
    }
    const notice = stderr.split('\n').find((l) => l.startsWith('kernelfleet_sandbox: places not private:'));
    return {
      uid: seen.uid,
      loopback: seen.reached.includes(canaryTarget),
      reached: seen.reached.filter((t) => t !== canaryTarget),
      sharedTmp: seen.sharedTmp,
      ...(notice ? { placesNotice: notice.replace('kernelfleet_sandbox: places not private: ', '') } : {}),
    };
  } finally {
    rmSync(marker, { force: true });
    canary.server.close();
  }
}

function listenOnLoopback(): Promise<{ server: Server; port: number }> {
  return new Promise((resolve, reject) => {
    const server = createServer((socket) => socket.destroy());
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve({ server, port: (server.address() as { port: number }).port }));
  });
}

function run(command: string, args: string[], cwd: string, env: Record<string, string>): Promise<{ stdout: string; stderr: string; code: number | null }> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { cwd, env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), CHECK_TIMEOUT_MS);
    child.once('error', reject);
    child.once('close', (code) => {
      clearTimeout(timer);
      resolve({ stdout, stderr, code });
    });
  });
}
