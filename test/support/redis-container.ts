import { RedisContainer, type StartedRedisContainer } from '@testcontainers/redis';
import { buildImages, loopbackOnly, redisImage, withoutReaper } from './docker-images';
import { randomRedisPassword } from './redis-server';

/**
 * The tests' shared Redis where a Docker engine answers: @testcontainers/redis with
 * docker-compose.yml's image (or its local stand-in), a password, nothing kept on disk, its port
 * published on 127.0.0.1. Elsewhere global-setup.ts starts a redis-server process instead. It
 * carries no test-run label: global-teardown.ts stops it, not the container tests' sweep.
 */
class LoopbackRedisContainer extends RedisContainer {
  protected override async beforeContainerCreated(): Promise<void> {
    loopbackOnly(this.hostConfig);
  }
}

export class ContainerRedis {
  private constructor(private readonly container: StartedRedisContainer, readonly url: string) {}

  static async start(): Promise<ContainerRedis> {
    buildImages('redis');
    withoutReaper();
    const password = randomRedisPassword();
    const container = await new LoopbackRedisContainer(redisImage())
      .withCommand(['redis-server', '--save', '', '--appendonly', 'no'])
      .withPassword(password)
      .start();
    return new ContainerRedis(container, `redis://:${password}@127.0.0.1:${container.getPort()}`);
  }

  async stop(): Promise<void> {
    await this.container.stop();
  }
}
