# kernelfleet worker: takes executions from Redis and runs them on the Jupyter kernels of a
# Jupyter server it starts itself as a child process (python/kernelfleet_jupyter.py). Build from
# the repo root:
#   docker build -f docker/worker.Dockerfile -t kernelfleet-worker .
# The steps are those of `npm start` (scripts/start.js) and `npm run start:worker`, checked by
# test/deploy/dockerfiles.spec.ts: .venv from python/requirements.txt, npm ci, npm run build, then
# the start:worker command.
FROM node:20-bookworm-slim

# Debian 12's python3 (3.11.2; python/requirements.txt pins soupsieve 2.10 for it) lives in
# /usr, where the kernel users reach it. tini is PID 1: it forwards SIGTERM (drain) to the worker
# and reaps what kernels leave behind. nftables (`nft`) walls kernels off the host's services
# (python/kernelfleet_netwall.py): the worker installs and holds the rules itself where it has
# NET_ADMIN (docker-compose.yml); in Kubernetes the init container `kernel-netwall` installs them
# with `python3 python/kernelfleet_netwall.py install` and the worker proves them at start.
RUN apt-get update \
  && apt-get install -y --no-install-recommends python3 python3-venv tini nftables \
  && rm -rf /var/lib/apt/lists/*

WORKDIR /app

# .venv at the repo root, where the worker looks for it (KERNELFLEET_PYTHON unset means
# <repo>/.venv/bin/python), built as scripts/start.js builds it, with the same stamp: `npm start`
# in this image would find it up to date.
COPY python/requirements.txt python/requirements.txt
RUN python3 -m venv --clear .venv \
  && .venv/bin/python -m pip install --no-cache-dir --disable-pip-version-check -r python/requirements.txt \
  && echo "$(sha256sum python/requirements.txt | cut -d' ' -f1) python3" > .venv/.requirements.sha256

COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund && npm cache clean --force

# What the build and the running worker read: the Lua scripts (libs/store/src/scripts) and the
# Jupyter server launcher, kernel sandbox, network rules and kernel site (python/) stay in the
# source tree.
COPY tsconfig.json tsconfig.build.json ./
COPY scripts/paths.js scripts/worker-probe.js scripts/build-client.js scripts/
COPY python python
COPY libs libs
COPY apps apps
RUN npm run build && npm prune --omit=dev --no-audit --no-fund && npm cache clean --force

# Root on purpose: the worker starts each kernel as a uid of its own (docs/security.md), which
# takes root with SETUID, SETGID, KILL, CHOWN, FOWNER and DAC_OVERRIDE, and SYS_ADMIN for each
# kernel's private /tmp (a mount namespace); docker-compose.yml adds NET_ADMIN for the network
# rules, and it and k8s/ drop every other capability. User code never runs as root and kernels
# get no capabilities.
USER root
ENV NODE_ENV=production
ENTRYPOINT ["/usr/bin/tini", "--"]
CMD ["node", "-r", "./scripts/paths.js", "dist/apps/worker/src/main.js"]
