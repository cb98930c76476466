import { execFileSync } from 'node:child_process';

/** Removes the containers of this run that a failed test left behind, and unused test networks. */
export default async function globalTeardown(): Promise<void> {
  const label = `label=kernelfleet.test-run=${process.env.KF_TEST_CONTAINER_RUN}`;
  const containers = execFileSync('docker', ['ps', '-aq', '--filter', label], { encoding: 'utf8' }).split('\n').filter(Boolean);
  if (containers.length) execFileSync('docker', ['rm', '-f', ...containers], { stdio: 'ignore' });
  // testcontainers labels its networks; those no container uses any more go.
  execFileSync('docker', ['network', 'prune', '-f', '--filter', 'label=org.testcontainers=true'], { stdio: 'ignore' });
}
