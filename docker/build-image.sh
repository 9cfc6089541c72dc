#!/usr/bin/env bash
# Builds kvd in release mode and packs it into a FROM scratch image, kvd:local (or $KVD_IMAGE).
# Nothing is pulled: the image holds only the binary, the shared libraries it links and the loader.
# Usage: docker/build-image.sh
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/.." && pwd)"
image="${KVD_IMAGE:-kvd:local}"
target_dir="${CARGO_TARGET_DIR:-$root/target}"
bin="$target_dir/release/kvd"

# Build the binary (cargo waits for the target dir's lock if another build holds it).
echo "== cargo build --release"
(cd "$root" && cargo build --release)

# Assemble the build context under target/ (git-ignored), removed again on exit.
mkdir -p "$target_dir"
ctx="$(mktemp -d "$target_dir/kvd-docker.XXXXXX")"
trap 'rm -rf "$ctx"' EXIT
rootfs="$ctx/rootfs"
mkdir -p "$rootfs/usr/local/bin" "$rootfs/data" "$rootfs/tmp"
chmod 1777 "$rootfs/tmp"
cp "$bin" "$rootfs/usr/local/bin/kvd"
# The release profile keeps debug info; drop it from the copy (symbols stay for backtraces).
if command -v strip >/dev/null; then
  strip --strip-debug "$rootfs/usr/local/bin/kvd"
fi

# Copy exactly what ldd lists (libraries and the dynamic loader), each at the path ldd names.
echo "== shared libraries (ldd $bin)"
libs="$(ldd "$bin" | awk '$2 == "=>" && $3 ~ /^\// { print $3 } $1 ~ /^\// { print $1 }')"
if [ -z "$libs" ]; then
  echo "build-image.sh: ldd listed no libraries for $bin" >&2
  exit 1
fi
for lib in $libs; do
  mkdir -p "$rootfs$(dirname "$lib")"
  cp -L "$lib" "$rootfs$lib"
  echo "   $lib"
done

# Build the image from the Dockerfile next to this script.
cp "$here/Dockerfile" "$ctx/Dockerfile"
echo "== docker build -t $image"
docker build -q -t "$image" "$ctx"

# The image must at least start kvd.
echo "== docker run --rm $image --version"
docker run --rm "$image" --version || {
  echo "build-image.sh: $image does not run kvd --version" >&2
  exit 1
}
