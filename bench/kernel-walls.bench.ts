/**
 * `npm run bench:walls` (as root): what the walls around kernels cost (docs/security.md).
 *
 * - A kernel start (REST start until kernel_info answers, through @jupyterlab/services) in the
 *   sandbox with a uid of its own, without and with private places (a mount and IPC namespace,
 *   /tmp, /var/tmp, /dev/shm, /run/lock covered, /proc with hidepid): the per-kernel cost.
 * - The warm `1+1` round trip, the floor of every figure in bench/, without and with the
 *   nftables rules for the kernel uids: the per-packet cost.
 *
 * Starts alternate between two Jupyter servers (one per setting) so both see the same noise.
 * Prints a table, then `start_p50_ms_without=… start_p50_ms_with=… rt_p50_ms_without=… rt_p50_ms_with=…`.
 */
import { chmodSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { JupyterServer, KernelClient, holdNetworkWalls, kernelEnvironment, type KernelHandle, type KernelSandboxSettings } from '@kernelfleet/kernel';
import { printTable, timeEach, runMain } from './app-snapshot';

const STARTS = Number(process.env.BENCH_STARTS ?? 20);
const ROUND_TRIPS = Number(process.env.BENCH_ROUND_TRIPS ?? 300);
const quiet = { onStream: () => undefined, onDisplay: () => undefined };

const median = (samples: number[]) => [...samples].sort((a, b) => a - b)[Math.floor(samples.length / 2)];
const p99 = (samples: number[]) => [...samples].sort((a, b) => a - b)[Math.min(samples.length - 1, Math.floor(samples.length * 0.99))];

async function main(): Promise<void> {
  if (process.getuid?.() !== 0) throw new Error('bench:walls needs root: the walls exist only for kernels with uids of their own');
  console.debug = () => undefined;
  const python = process.env.KERNELFLEET_PYTHON ?? join(__dirname, '..', '.venv', 'bin', 'python');
  const dir = mkdtempSync(join(tmpdir(), 'kf-bench-walls-'));
  chmodSync(dir, 0o711); // kernel users pass through to their folders
  const sandbox = (privatePlaces: boolean): KernelSandboxSettings => ({
    switchUser: true,
    uidBase: 2_000_000_000,
    uidCount: 4_096,
    lockDir: join(dir, 'locks'),
    runDir: join(dir, 'home'),
    keepPaths: [dir],
    privatePlaces,
    limits: { addressSpaceBytes: 0, cpuSeconds: 0, processes: 0, fileSizeBytes: 0, openFiles: 0 },
  });
  const env = kernelEnvironment(process.env);
  const servers = await Promise.all(
    [false, true].map((privatePlaces) => JupyterServer.start({ python, rootDir: join(dir, `root-${privatePlaces}`), env, sandbox: sandbox(privatePlaces) })),
  );
  const clients = servers.map((server) => new KernelClient({ baseUrl: server.url, token: server.token }));
  try {
    const starts: number[][] = [[], []];
    for (let i = 0; i < STARTS; i++) {
      for (const which of [0, 1]) {
        const began = process.hrtime.bigint();
        const kernel = await clients[which].startKernel({ timeoutMs: 30_000 });
        starts[which].push(Number(process.hrtime.bigint() - began) / 1e6);
        await kernel.shutdown();
      }
    }

    const kernel: KernelHandle = await clients[1].startKernel({ timeoutMs: 30_000 });
    const roundTrip = async () => {
      const outcome = await kernel.execute('1+1', quiet);
      if (outcome.status !== 'ok') throw new Error(`1+1 answered ${outcome.status}`);
    };
    await timeEach(30, roundTrip);
    const trips: number[][] = [[], []];
    for (let block = 0; block < 10; block++) {
      trips[0].push(...(await timeEach(ROUND_TRIPS / 10, roundTrip)));
      const hold = await holdNetworkWalls({ python, uidBase: 2_000_000_000, uidCount: 4_096, network: 'public', denyExtra: [] });
      trips[1].push(...(await timeEach(ROUND_TRIPS / 10, roundTrip)));
      await hold.release();
    }
    await kernel.shutdown();

    const ms = (n: number) => n.toFixed(1);
    printTable(
      [44, 12, 12, 8],
      ['what', 'p50 ms', 'p99 ms', 'n'],
      [
        ['kernel start, uid of its own', ms(median(starts[0])), ms(p99(starts[0])), String(STARTS)],
        ['kernel start, uid + private places', ms(median(starts[1])), ms(p99(starts[1])), String(STARTS)],
        ['warm 1+1 round trip, no rules (floor)', ms(median(trips[0])), ms(p99(trips[0])), String(trips[0].length)],
        ['warm 1+1 round trip, nftables rules', ms(median(trips[1])), ms(p99(trips[1])), String(trips[1].length)],
      ],
    );
    console.log(
      `start_p50_ms_without=${ms(median(starts[0]))} start_p50_ms_with=${ms(median(starts[1]))} ` +
        `rt_p50_ms_without=${ms(median(trips[0]))} rt_p50_ms_with=${ms(median(trips[1]))}`,
    );
  } finally {
    await Promise.all(servers.map((server) => server.stop()));
    rmSync(dir, { recursive: true, force: true });
  }
}

runMain(main);
