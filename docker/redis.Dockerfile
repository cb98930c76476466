# A stand-in for redis:7.4-bookworm where Docker Hub cannot be reached: Debian 12's redis-server
# (7.0) on the same base as the other images. `npm run images` builds it only then, as
# kernelfleet-redis:local; run the compose file with REDIS_IMAGE=kernelfleet-redis:local.
# Test machinery, not the product: with Docker Hub, docker-compose.yml uses the official image.
ARG NODE_IMAGE=node:20-bookworm-slim
FROM ${NODE_IMAGE}
RUN apt-get update \
  && apt-get install -y --no-install-recommends redis-server \
  && rm -rf /var/lib/apt/lists/* \
  && mkdir -p /data && chown redis:redis /data
USER redis
WORKDIR /data
EXPOSE 6379
CMD ["redis-server", "--protected-mode", "no"]
