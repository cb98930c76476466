# kernelfleet api: HTTP in front of Redis; it runs no Python. Build from the repo root (or all
# images at once with `npm run images`):
#   docker build -f docker/api.Dockerfile -t kernelfleet-api:local .
# NODE_IMAGE is the base of both stages: the official image by default; `npm run images` passes
# a locally built stand-in where Docker Hub cannot be reached (docker/local-base.sh).
ARG NODE_IMAGE=node:20-bookworm-slim

# Build stage: the steps of `npm start` (scripts/start.js) — npm ci from the lockfile, npm run
# build — then the dev dependencies go.
FROM ${NODE_IMAGE} AS build
WORKDIR /app
# A proxy's CA, if the builder put one in docker/build-ca/ (docker/build-ca/README.md).
COPY docker/build-ca.sh docker/build-ca/ /tmp/build-ca/
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

# Runtime stage: node, the production dependencies, the compiled output and the two things read
# from the source tree at run time (the Lua scripts, scripts/paths.js). No compiler, no npm cache,
# no CA from the build.
FROM ${NODE_IMAGE}
WORKDIR /app
COPY --from=build /app/package.json ./
COPY --from=build /app/node_modules node_modules
COPY --from=build /app/dist dist
COPY scripts/paths.js scripts/
COPY libs/store/src/scripts libs/store/src/scripts
# Not root, no capabilities needed (docker-compose.yml and k8s/ drop them all).
USER node
ENV NODE_ENV=production PORT=8080 HOST=0.0.0.0
EXPOSE 8080
CMD ["node", "-r", "./scripts/paths.js", "dist/apps/api/src/main.js"]
