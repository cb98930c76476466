# kernelfleet api: HTTP in front of Redis; it runs no Python. Build from the repo root:
#   docker build -f docker/api.Dockerfile -t kernelfleet-api .
# The steps are those of `npm start` (scripts/start.js) and `npm run start:api`, checked by
# test/deploy/dockerfiles.spec.ts: npm ci, npm run build, then the start:api command.
FROM node:20-bookworm-slim

WORKDIR /app
# Dependencies first: this layer is cached while package*.json do not change.
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund && npm cache clean --force

# What the build and the running api read. dist/ alone is not enough: the Lua scripts are read
# from libs/store/src/scripts at run time, and scripts/paths.js maps @kernelfleet/* into dist/.
COPY tsconfig.json tsconfig.build.json ./
COPY scripts/paths.js scripts/build-client.js scripts/
COPY libs libs
COPY apps apps
RUN npm run build && npm prune --omit=dev --no-audit --no-fund && npm cache clean --force

# Not root, no capabilities needed (docker-compose.yml and k8s/ drop them all).
USER node
ENV NODE_ENV=production PORT=8080 HOST=0.0.0.0
EXPOSE 8080
CMD ["node", "-r", "./scripts/paths.js", "dist/apps/api/src/main.js"]
