# kernelfleet api: HTTP in front of Redis. Build from the repo root:
#   docker build -f docker/api.Dockerfile .
FROM node:20-bookworm-slim

WORKDIR /app
# Dependencies first (cached while package*.json do not change). All of them, dev ones too:
# scripts/paths.js needs tsconfig-paths (a devDependency) at run time.
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund && npm cache clean --force

COPY . .
RUN npm run build

USER node
ENV PORT=8080 HOST=0.0.0.0
EXPOSE 8080
CMD ["node", "-r", "./scripts/paths.js", "dist/apps/api/src/main.js"]
