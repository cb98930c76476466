# kernelfleet worker: takes executions from Redis and runs them on the Jupyter kernels of a
# Jupyter server it starts itself as a child process (python/kernelfleet_jupyter.py). Build from
# the repo root (or all images at once with `npm run images`):
#   docker build -f docker/worker.Dockerfile -t kernelfleet-worker:local .
# NODE_IMAGE is the base of both stages: the official image by default; `npm run images` passes
# a locally built stand-in where Docker Hub cannot be reached (docker/local-base.sh).
ARG NODE_IMAGE=node:20-bookworm-slim

# Build stage: the steps of `npm start` (scripts/start.js) — .venv from python/requirements.txt,
# npm ci from the lockfile, npm run build — then the dev dependencies go.
FROM ${NODE_IMAGE} AS build
# Debian 12's python3 (3.11.2; python/requirements.txt pins soupsieve 2.10 for it): the runtime
# stage installs the same, at the same path, for the venv to point at.
RUN apt-get update \
  && apt-get install -y --no-install-recommends python3 python3-venv \
  && rm -rf /var/lib/apt/lists/*
WORKDIR /app
# A proxy's CA, if the builder put one in docker/build-ca/ (docker/build-ca/README.md).
COPY docker/build-ca.sh docker/build-ca/ /tmp/build-ca/
# .venv at the repo root, where the worker looks for it (KERNELFLEET_PYTHON unset means
# <repo>/.venv/bin/python), with the stamp scripts/start.js writes.
COPY python/requirements.txt python/requirements.txt
RUN python3 -m venv --clear .venv \
  && . /tmp/build-ca/build-ca.sh \
  && .venv/bin/python -m pip install --no-cache-dir --disable-pip-version-check -r python/requirements.txt \
  && echo "$(sha256sum python/requirements.txt | cut -d' ' -f1) python3" > .venv/.requirements.sha256
COPY package.json package-lock.json ./
RUN . /tmp/build-ca/build-ca.sh && npm ci --no-audit --no-fund
COPY tsconfig.json tsconfig.build.json ./
COPY scripts/build-client.js scripts/
COPY libs libs
COPY apps apps
# typescript goes by hand: an optional peer of a validation library inside @bull-board/api as well
# as a dev dependency, the lockfile marks it devOptional, which `npm prune --omit=dev` keeps.
RUN npm run build && npm prune --omit=dev --no-audit --no-fund \
  && rm -rf node_modules/typescript node_modules/.bin/tsc node_modules/.bin/tsserver

# Runtime stage. tini is PID 1: it forwards SIGTERM (drain) to the worker and reaps what kernels
# leave behind. nftables (`nft`) walls kernels off the host's services
# (python/kernelfleet_netwall.py): the worker installs and holds the rules itself where it has
# NET_ADMIN (docker-compose.yml); in Kubernetes the init container `kernel-netwall` installs them
# with `python3 python/kernelfleet_netwall.py install` and the worker proves them at start.
FROM ${NODE_IMAGE}
RUN apt-get update \
  && apt-get install -y --no-install-recommends python3 tini nftables \
  && rm -rf /var/lib/apt/lists/*
WORKDIR /app
COPY --from=build /app/.venv .venv
COPY --from=build /app/package.json ./
COPY --from=build /app/node_modules node_modules
COPY --from=build /app/dist dist
# Read from the source tree at run time: the Lua scripts, the Jupyter server launcher, kernel
# sandbox, network rules and kernel site (python/), the module paths and the readiness probe.
COPY scripts/paths.js scripts/worker-probe.js scripts/
COPY libs/store/src/scripts libs/store/src/scripts
COPY python python
# Root on purpose: the worker starts each kernel as a uid of its own (docs/security.md), which
# takes root with SETUID, SETGID, KILL, CHOWN, FOWNER and DAC_OVERRIDE, and SYS_ADMIN for each
# kernel's private /tmp (a mount namespace); docker-compose.yml adds NET_ADMIN for the network
# rules, and it and k8s/ drop every other capability. User code never runs as root and kernels
# get no capabilities.
USER root
ENV NODE_ENV=production
ENTRYPOINT ["/usr/bin/tini", "--"]
CMD ["node", "-r", "./scripts/paths.js", "dist/apps/worker/src/main.js"]
