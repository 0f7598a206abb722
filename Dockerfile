# syntax=docker/dockerfile:1
# Multi-stage build: compile TypeScript in a full image, run the compiled JavaScript as a
# non-root user in a slim one.
FROM node:22-bookworm-slim AS build
WORKDIR /app
COPY package.json package-lock.json ./
# `npm ci` runs the `prepare` script, which builds the upload page (web/ → web/dist).
COPY scripts/build-web.mjs ./scripts/
COPY web ./web
RUN npm ci --no-audit --no-fund
COPY tsconfig.json tsconfig.build.json ./
COPY src ./src
COPY hooks ./hooks
COPY tasks ./tasks
RUN npm run build && npm prune --omit=dev

FROM node:22-bookworm-slim
ENV NODE_ENV=production \
    HOST=0.0.0.0 \
    PORT=1080 \
    DATA_DIR=/data
WORKDIR /app
# ffmpeg decodes AAC / ALAC audio for waveform previews (FFMPEG_PATH; without it those files get none).
RUN apt-get update && apt-get install -y --no-install-recommends ffmpeg && rm -rf /var/lib/apt/lists/*
# A dedicated unprivileged user; /data holds disk uploads (and the embedded PostgreSQL when
# DATABASE_URL is not set).
RUN groupadd --system tusvault && useradd --system --gid tusvault --home-dir /app tusvault \
 && mkdir -p /data && chown tusvault:tusvault /data
COPY --from=build --chown=tusvault:tusvault /app/node_modules ./node_modules
COPY --from=build --chown=tusvault:tusvault /app/dist ./dist
COPY --from=build --chown=tusvault:tusvault /app/web/dist ./web/dist
COPY --chown=tusvault:tusvault drizzle ./drizzle
COPY --chown=tusvault:tusvault package.json ./
# `tusvault <command>` in the image (the bin runs dist/ when there is no src/).
COPY --chown=tusvault:tusvault bin ./bin
USER tusvault
VOLUME ["/data"]
EXPOSE 1080
HEALTHCHECK --interval=15s --timeout=5s --start-period=30s --retries=3 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:'+(process.env.PORT||1080)+'/healthz').then(r=>process.exit(r.ok?0:1),()=>process.exit(1))"]
# Binding 0.0.0.0 needs AUTH_MODE=jwt (or AUTH_ALLOW_NONE_ON_PUBLIC_HOST=true for a private network).
CMD ["node", "dist/src/main.js"]
