#!/bin/sh
# First run on a fresh machine, offline: makes a busybox base image from Debian's
# busybox-static (FROM scratch + COPY rootfs/ /, built by tsbuild itself), then builds
# examples/hello on it and runs nothing else. Needs root (overlayfs + runc).
set -eu
cd "$(dirname "$0")/.."
tsbuild="$(pwd)/dist/bin/tsbuild.cjs"
rm -rf examples/busybox/rootfs
sh examples/busybox/make-rootfs.sh examples/busybox/rootfs
$tsbuild build -t busybox examples/busybox
cd examples/hello
$tsbuild -f Dockerfile -t hello .
echo "built hello: try  tsbuild build -t app --target runtime --build-arg VERSION=2 --output type=oci,dest=app.tar examples/hello"
