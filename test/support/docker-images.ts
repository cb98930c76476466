import { execFileSync, spawnSync } from 'node:child_process';
import { join } from 'node:path';

const ROOT = join(__dirname, '..', '..');
const OFFICIAL_REDIS = 'redis:7.4-bookworm';
const LOCAL_REDIS = 'kernelfleet-redis:local';

/** Publishes a container's ports on 127.0.0.1 only (testcontainers binds every interface). */
export function loopbackOnly(hostConfig: { PortBindings?: Record<string, unknown> }): void {
  for (const bindings of Object.values(hostConfig.PortBindings ?? {})) {
    for (const binding of bindings as { HostIp?: string }[]) binding.HostIp = '127.0.0.1';
  }
}

/** Labels what a test run starts, for the teardown that removes what a crashed run left. */
export function testRunLabel(): Record<string, string> {
  return { 'kernelfleet.test-run': process.env.KF_TEST_CONTAINER_RUN ?? 'none' };
}

/**
 * Testcontainers' reaper (Ryuk) comes from Docker Hub, which not every test machine reaches: it
 * stays off, and whoever starts containers stops them (a crashed run's: the teardown, by label).
 */
export function withoutReaper(): void {
  process.env.TESTCONTAINERS_RYUK_DISABLED = 'true';
}

/** True when a Docker engine answers `docker version`. */
export function dockerEngine(): boolean {
  return spawnSync('docker', ['version', '--format', '{{.Server.Version}}'], { stdio: 'ignore', timeout: 10_000 }).status === 0;
}

function present(image: string): boolean {
  return spawnSync('docker', ['image', 'inspect', image], { stdio: 'ignore' }).status === 0;
}

/** docker-compose.yml's Redis image, or the stand-in `npm run images` builds without Docker Hub. */
export function redisImage(): string {
  return present(OFFICIAL_REDIS) || !present(LOCAL_REDIS) ? OFFICIAL_REDIS : LOCAL_REDIS;
}

/**
 * `npm run images` (scripts/images.js) for this checkout, once per test run: cached layers make
 * it quick when nothing changed. `what` = 'redis' makes sure of a Redis image only.
 */
export function buildImages(what: 'all' | 'redis' = 'all'): void {
  const flag = what === 'all' ? 'KF_TEST_IMAGES_BUILT' : 'KF_TEST_REDIS_IMAGE_BUILT';
  if (process.env[flag] || process.env.KF_TEST_IMAGES_BUILT) return;
  execFileSync(process.execPath, [join(ROOT, 'scripts', 'images.js'), ...(what === 'redis' ? ['--redis-only'] : [])], { cwd: ROOT, stdio: 'inherit' });
  process.env[flag] = '1';
}
