#!/usr/bin/env bash
# Benchmark: packaging one 32 MiB static executable with build-image versus
# `buildah bud -f Dockerfile.scratch` + `buildah push ... oci:DIR`.
#
#   build/benches/build-vs-buildah.sh [RUNS]     (default 10 runs each)
#
# The input is the release supervisor followed by other real program bytes
# (busybox, Go and Rust toolchain executables), truncated to 32 MiB, so it
# compresses like a real program; the appended bytes lie after every ELF
# segment, so it is still a valid static ELF for --binary.
#
# Runs alternate (buildah, build-image, buildah, ...) so that load from
# anything else on the machine hits both alike; each run starts from an
# empty output folder. Then hyperfine times the no-op rebuild (same binary,
# same layout) against the first build. Prints medians, ratios, and both
# layer sizes. Needs: buildah, hyperfine, the musl target; runs as root
# with private container storage (nothing of the user's is touched).
set -euo pipefail

runs="${1:-10}"
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
work="$(mktemp -d /tmp/build-image-bench.XXXXXX)"
storage=(--root "$work/storage/root" --runroot "$work/storage/runroot" --storage-driver vfs)
export CONTAINERS_CONF="$root/testsupport/containers.conf"
export CONTAINERS_REGISTRIES_CONF="$root/testsupport/registries.conf"
cleanup() {
    buildah "${storage[@]}" rm --all >/dev/null 2>&1 || true
    buildah "${storage[@]}" rmi --all --force >/dev/null 2>&1 || true
    rm -rf "$work"
}
trap cleanup EXIT

for tool in buildah hyperfine; do
    command -v "$tool" >/dev/null || { echo "needs $tool (apt-get install $tool)" >&2; exit 1; }
done

echo "building build-image and the supervisor (release) ..." >&2
(cd "$root" && cargo build --quiet --release -p build-image \
    && cargo build --quiet --release -p openshell-sandbox --target x86_64-unknown-linux-musl)
build_image="$root/target/release/build-image"
supervisor="$root/target/x86_64-unknown-linux-musl/release/openshell-sandbox"

# The input: real program bytes after the supervisor's ELF.
mkdir -p "$work/context"
input="$work/context/openshell-sandbox"
sysroot="$(rustc --print sysroot)"
extra=()
for candidate in /bin/busybox /usr/bin/docker-registry /usr/bin/skopeo /usr/bin/umoci /usr/bin/buildah \
    "$sysroot"/lib/rustlib/*/bin/rust-lld "$sysroot"/bin/cargo; do
    [[ -f "$candidate" ]] && extra+=("$candidate")
done
# head closes the pipe early, so cat dies of SIGPIPE: not an error here.
cat "$supervisor" "${extra[@]}" | head -c $((32 * 1024 * 1024)) >"$input" || true
[[ $(stat -c %s "$input") -eq $((32 * 1024 * 1024)) ]] || { echo "could not make a 32 MiB input" >&2; exit 1; }
chmod 0755 "$input"
echo "input: $(stat -c %s "$input") bytes: $supervisor + ${extra[*]}" >&2

layer_size() { # the largest blob of a layout is its layer
    find "$1/blobs/sha256" -type f -printf '%s\n' | sort -n | tail -1
}
now() { echo "${EPOCHREALTIME/./}"; } # microseconds

buildah_times=()
ours_times=()
for ((i = 1; i <= runs; i++)); do
    rm -rf "$work/buildah-layout" "$work/ours-layout"
    buildah "${storage[@]}" rmi --all --force >/dev/null 2>&1 || true

    start=$(now)
    buildah "${storage[@]}" bud --quiet --layers=false -f "$root/Dockerfile.scratch" \
        -t localhost/bench:latest "$work/context" >/dev/null
    buildah "${storage[@]}" push --quiet localhost/bench:latest "oci:$work/buildah-layout:latest"
    buildah_times+=($(($(now) - start)))

    start=$(now)
    "$build_image" --quiet --binary "$input" --output "$work/ours-layout" >/dev/null
    ours_times+=($(($(now) - start)))
    echo "run $i: buildah $((buildah_times[-1] / 1000)) ms, build-image $((ours_times[-1] / 1000)) ms" >&2
done

median() { printf '%s\n' "$@" | sort -n | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }
buildah_median=$(median "${buildah_times[@]}")
ours_median=$(median "${ours_times[@]}")
buildah_layer=$(layer_size "$work/buildah-layout")
ours_layer=$(layer_size "$work/ours-layout")

# The no-op rebuild: the layout from the last run is up to date.
hyperfine --style basic --warmup 3 --runs 30 -N \
    --export-json "$work/noop.json" \
    "$build_image --quiet --binary $input --output $work/ours-layout" >&2
noop_median=$(grep -m1 '"median"' "$work/noop.json" | tr -dc '0-9.')
noop_us=$(awk -v s="$noop_median" 'BEGIN {printf "%d", s * 1000000}')

"$build_image" verify --quiet "oci:$work/buildah-layout:latest" >/dev/null
"$build_image" verify --quiet "oci:$work/ours-layout:latest" >/dev/null

awk -v b="$buildah_median" -v o="$ours_median" -v n="$noop_us" \
    -v bl="$buildah_layer" -v ol="$ours_layer" -v runs="$runs" 'BEGIN {
    printf "\n%d alternating runs each, 32 MiB static executable\n", runs
    printf "buildah bud + push oci:   median %7.1f ms   layer %d bytes\n", b / 1000, bl
    printf "build-image --binary:     median %7.1f ms   layer %d bytes\n", o / 1000, ol
    printf "build-image no-op rebuild: median %6.1f ms\n", n / 1000
    printf "speed-up over buildah: %.2fx (goal >= 3)\n", b / o
    printf "layer size vs buildah: %.4f (goal <= 1)\n", ol / bl
    printf "no-op rebuild vs first build: %.1fx faster (goal >= 10)\n", o / n
}'
