import type { WorkerConfig } from '@kernelfleet/config';
import { checkKernelReach, holdNetworkWalls, kernelEnvironment, NetworkWallsConflictError, type NetworkWallHold } from '@kernelfleet/kernel';
import { redisAddresses } from '@kernelfleet/store';
import type { SandboxPlan } from './kernel-sandbox';

/** What the walls around this worker's kernels hold, measured by a kernel at start. */
export interface KernelWalls {
  /** Whether a kernel may open a connection to the fleet's Redis (then Redis must want a password). */
  kernelsReachRedis: boolean;
  /** One line for the log: what kernels can and cannot reach. */
  summary: string;
  /** Lets go of the network rules (the host's last worker removes them). */
  release(): Promise<void>;
}

/** Thrown when kernels would not be walled off and the setup is not a single-tenant one. */
export class KernelWallsError extends Error {
  override readonly name = 'KernelWallsError';
}

const SINGLE_TENANT_HINT = 'SINGLE_TENANT_DEV=true starts anyway, for a single-tenant development setup only';

/**
 * Puts up the walls of DESIGN invariant 13 around the kernels of this worker's own Jupyter
 * server, then proves them: a check program started exactly as a kernel is tries to connect to
 * a listener on this host's loopback and to Redis, and looks for a file the worker left in /tmp.
 *
 * As root with kernels as users of their own: nftables rules for the kernels' uids (held with
 * the host's other workers, python/kernelfleet_netwall.py) and private /tmp, /var/tmp, /dev/shm
 * (python/kernelfleet_sandbox.py). Rules put there by someone else (a Kubernetes init container)
 * count as long as the check proves them. Walls that do not hold stop the worker, unless
 * `SINGLE_TENANT_DEV=true`. Without users of their own (not root, or KERNEL_SANDBOX=limits/off),
 * kernels reach whatever the worker reaches, and the summary says so.
 */
export async function raiseKernelWalls(config: WorkerConfig, plan: SandboxPlan): Promise<KernelWalls> {
  const { sandbox, jupyter, store } = config;
  const none = async () => undefined;
  if (!plan.kernelUsers || !plan.settings) {
    return {
      kernelsReachRedis: true,
      summary: `kernels can reach this host's services (Redis, the Jupyter server, metrics, anything on loopback) and share /tmp: ${plan.reason}; only a worker running as root with KERNEL_SANDBOX=auto walls them off (docs/security.md)`,
      release: none,
    };
  }
  let hold: NetworkWallHold | undefined;
  let holdError: string | undefined;
  try {
    hold = await holdNetworkWalls({
      python: jupyter.python,
      uidBase: sandbox.uidBase,
      uidCount: sandbox.uidCount,
      network: sandbox.network,
      denyExtra: sandbox.denyExtra,
    });
  } catch (error) {
    if (error instanceof NetworkWallsConflictError) throw new KernelWallsError(`${error.message}; give every worker of a host the same KERNEL_NETWORK, KERNEL_DENY_EXTRA and uid range`);
    holdError = (error as Error).message;
  }
  const release = async () => hold?.release();
  const started = Date.now();
  const reach = await checkKernelReach({
    python: jupyter.python,
    rootDir: jupyter.rootDir,
    sandbox: plan.settings,
    env: kernelEnvironment(process.env),
    targets: redisAddresses(store.redisUrl),
  }).catch(async (error: unknown) => {
    await release();
    throw error;
  });
  const checkMs = Date.now() - started;

  const holes: string[] = [];
  if (reach.loopback) {
    holes.push(`kernels can connect to this host's services (${holdError ? `network rules not installed: ${holdError}; install nftables and give the worker CAP_NET_ADMIN` : 'the network rules do not hold'})`);
  }
  if (reach.sharedTmp || reach.placesNotice) {
    holes.push(`kernels share /tmp with each other (${reach.placesNotice ?? 'not covered'}; the worker needs CAP_SYS_ADMIN for mount namespaces)`);
  }
  if (holes.length && !sandbox.singleTenantDev) {
    await release();
    throw new KernelWallsError(`kernels would not be walled off: ${holes.join('; ')}. ${SINGLE_TENANT_HINT}`);
  }
  const network = sandbox.network === 'none' ? 'no new connections at all' : 'new connections to public addresses only';
  const summary = holes.length
    ? `SINGLE_TENANT_DEV: ${holes.join('; ')}`
    : `kernels reach no service of this host or its private networks (${network}${hold ? '' : ', rules installed by someone else'}); /tmp, /var/tmp and /dev/shm are each kernel's own (checked as uid ${reach.uid} in ${checkMs} ms)`;
  return { kernelsReachRedis: reach.loopback || reach.reached.length > 0, summary, release };
}
