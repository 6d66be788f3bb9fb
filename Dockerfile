# tsbuild as a CI image: the builder, runc, newuidmap/newgidmap and slirp4netns on Node 20.
# Built by tsbuild from a checkout where tsbuild has been built (see docs/ci.md):
#
#   npm ci && npm run build && tsbuild build -t tsbuild .
#
# The context is the checkout itself: dist/bin and native/build/Release come from `npm run build`
# on the machine that builds the image (the same Node 20 ABI as the base), so nothing here needs
# a compiler or the npm registry. .dockerignore keeps everything else out.
ARG BASE=node:20-bookworm-slim

# The programs the isolation modes use: runc (overlay, rootless), newuidmap/newgidmap (rootless,
# from uidmap), slirp4netns (private RUN networks without root). A base that already has them all
# (tests build one from the host's binaries, offline) skips apt-get.
FROM ${BASE} AS runtime
RUN if command -v runc && command -v newuidmap && command -v newgidmap && command -v slirp4netns; then \
      echo "runc, uidmap and slirp4netns are already in the base image"; \
    else \
      apt-get update \
      && apt-get install -y --no-install-recommends runc uidmap slirp4netns ca-certificates \
      && rm -rf /var/lib/apt/lists/*; \
    fi

# tsbuild itself: the bundle (dist/bin, its npm dependencies inside, so no node_modules), the
# package.json it reads its version from, the native addon and the chroot helper.
FROM runtime
COPY package.json /opt/tsbuild/
COPY native/build/Release/ /opt/tsbuild/native/build/Release/
COPY dist/bin/ /opt/tsbuild/dist/bin/
RUN chmod 755 /opt/tsbuild/dist/bin/tsbuild.cjs \
    && mkdir -p /usr/local/bin \
    && ln -sf /opt/tsbuild/dist/bin/tsbuild.cjs /usr/local/bin/tsbuild

# The store (layers, images, build cache): mount a volume or a CI cache here to keep it between
# jobs. Registry credentials: $DOCKER_CONFIG/config.json (tsbuild login writes it too).
ENV TSBUILD_ROOT=/var/lib/tsbuild \
    DOCKER_CONFIG=/root/.docker
VOLUME /var/lib/tsbuild
WORKDIR /workspace
ENTRYPOINT ["tsbuild"]
CMD ["--help"]
