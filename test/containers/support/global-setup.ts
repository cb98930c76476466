import { randomBytes } from 'node:crypto';
import { buildImages } from '../../support/docker-images';

/**
 * Once per run of the container tests: the images of this checkout (`npm run images`, cached
 * layers make it quick), and a label that marks every container the run starts so that the
 * teardown removes what a crashed test left (testcontainers' own reaper is off: withoutReaper).
 */
export default async function globalSetup(): Promise<void> {
  buildImages();
  process.env.KF_TEST_CONTAINER_RUN ??= randomBytes(6).toString('hex');
}
