# syntax=docker/dockerfile:1
# atoll: one image, one binary. The chart runs it as
#   node /app/dist/main.js <controller|gateway|agent|console|seal|test|dev>
# Build:  docker build -t ghcr.io/atoll-dev/atoll:dev .

ARG NODE_VERSION=22

# --- build: compile TypeScript, then drop dev dependencies -------------------
FROM node:${NODE_VERSION}-bookworm-slim AS build
WORKDIR /app
ENV NODE_ENV=development \
    npm_config_fund=false \
    npm_config_audit=false \
    npm_config_update_notifier=false
COPY package.json package-lock.json ./
RUN --mount=type=cache,target=/root/.npm npm ci
COPY tsconfig.json ./
COPY src ./src
# (the console's React app is built by vite from src/console/web into dist/console/web)
RUN npm run build && npm prune --omit=dev

# --- runtime: distroless Node 22, no shell, no package manager, non-root -----
FROM gcr.io/distroless/nodejs${NODE_VERSION}-debian12:nonroot
WORKDIR /app
ENV NODE_ENV=production
# Files are root-owned and read-only to the process (UID 65532): the pod runs
# with readOnlyRootFilesystem and writes nothing but /tmp (an emptyDir).
COPY --from=build /app/package.json ./package.json
COPY --from=build /app/node_modules ./node_modules
COPY --from=build /app/dist ./dist
# The CRDs and built-in types, for `atoll dev` run from the image.
COPY crds ./crds
COPY config/types ./config/types
USER 65532:65532
# 8080 health/metrics, 8443 gateway, 9443 admission webhooks, 8090 console
EXPOSE 8080 8443 9443 8090
ENTRYPOINT ["/nodejs/bin/node", "/app/dist/main.js"]
CMD ["controller"]
