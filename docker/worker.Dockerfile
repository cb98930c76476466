# kernelfleet worker: takes executions from Redis and runs them on Jupyter kernels of its own
# Jupyter server (python/kernelfleet_jupyter.py, .venv). Build from the repo root:
#   docker build -f docker/worker.Dockerfile .
FROM node:20-bookworm-slim

RUN apt-get update \
  && apt-get install -y --no-install-recommends python3 python3-venv \
  && rm -rf /var/lib/apt/lists/*

WORKDIR /app

# .venv from the pinned python/requirements.txt, as scripts/start.js builds it (same stamp file:
# scripts/start.js would find it up to date).
COPY python/requirements.txt python/requirements.txt
RUN python3 -m venv .venv \
  && .venv/bin/python -m pip install --no-cache-dir --disable-pip-version-check -r python/requirements.txt \
  && sha256sum python/requirements.txt | cut -d' ' -f1 > .venv/.requirements.sha256

COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund && npm cache clean --force

# The whole tree: dist/ alone is not enough (libs/store/src/scripts/*.lua and
# python/kernelfleet_jupyter.py are read from the source tree at run time).
COPY . .
RUN npm run build \
  && mkdir -p .kernelfleet/kernels && chown -R node:node .kernelfleet

# User code runs in the kernels: not as root. Kernel working dirs: /app/.kernelfleet/kernels.
USER node
CMD ["node", "-r", "./scripts/paths.js", "dist/apps/worker/src/main.js"]
