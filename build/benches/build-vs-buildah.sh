#!/usr/bin/env bash
# Benchmark: packaging one 32 MiB static executable with build-image versus
# `buildah bud -f Dockerfile.scratch` + `buildah push ... oci:DIR`.
#
#   build/benches/build-vs-buildah.sh [RUNS] [INPUT] [LEVEL]
#
# (default 10 runs each; LEVEL is build-image's --compression-level, its
# default when not given)
#
# The input is INPUT when given (any static executable), else the release
# supervisor followed by other real program bytes (busybox, Go and Rust
# toolchain executables), truncated to 32 MiB, so it compresses like a real
# program; the appended bytes lie after every ELF segment, so it is still a
# valid static ELF for --binary.
#
# buildah keeps its storage (vfs, private to this run) from one run to the
# next, as a user's does: one untimed build first fills it, and nothing is
# removed between runs. Each run writes into a new, empty output folder
# (build-image's no-op rebuild is timed separately, by hyperfine, last).
# Runs alternate in ABBA order (buildah, build-image, build-image, buildah,
# ...) so that load from anything else on the machine hits both alike.
# Prints medians of wall and CPU time, ratios, and both layer sizes. Needs:
# buildah, hyperfine, the musl target; runs as root with private container
# storage (nothing of the user's is touched).
set -euo pipefail

runs="${1:-10}"
given_input="${2:-}"
level_args=()
[[ -z ${3:-} ]] || level_args=(--compression-level "$3")
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
# shellcheck source=build/benches/input.sh
. "$here/input.sh"
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

target=$(grep -o '"[a-z0-9_]*-unknown-linux-musl"' "$root/contract/src/paths.rs" | head -1 | tr -d '"')
echo "building build-image and the supervisor (release) ..." >&2
(cd "$root" && cargo build --quiet --release -p build-image \
    && cargo build --quiet --release -p openshell-sandbox --target "$target")
build_image="$root/target/release/build-image"
supervisor="$root/target/$target/release/openshell-sandbox"

mkdir -p "$work/context"
input="$work/context/openshell-sandbox"
if [[ -n $given_input ]]; then
    cp "$given_input" "$input"
    echo "input: $(stat -c %s "$input") bytes: $given_input" >&2
else
    # Real program bytes after the supervisor's ELF.
    (cd "$root" && make_input "$supervisor" "$input")
fi
chmod 0755 "$input"

layer_size() { # the largest blob of a layout is its layer
    find "$1/blobs/sha256" -type f -printf '%s\n' | sort -n | tail -1
}
now() { echo "${EPOCHREALTIME/./}"; } # microseconds
cpu_us() { # user + system CPU time of this shell's finished children, in µs
    local pid=$BASHPID ticks # (inside $(...) below, $BASHPID would be awk's shell)
    ticks=$(awk '{print $16 + $17}' "/proc/$pid/stat")
    echo $((ticks * 1000000 / $(getconf CLK_TCK)))
}

run_buildah() { # $1: output layout
    buildah "${storage[@]}" bud --quiet --layers=false -f "$root/Dockerfile.scratch" \
        -t localhost/bench:latest "$work/context" >/dev/null
    buildah "${storage[@]}" push --quiet localhost/bench:latest "oci:$1:latest" >/dev/null
}
run_ours() { # $1: output layout
    "$build_image" --quiet --binary "$input" "${level_args[@]}" --output "$1" >/dev/null
}

# Untimed: buildah's storage now holds what a user's would after one build.
run_buildah "$work/warm-buildah"
run_ours "$work/warm-ours"

buildah_times=()
ours_times=()
buildah_cpu=()
ours_cpu=()
timed() { # $1: tool (buildah|ours), $2: run number; runs it in a subshell
    local out="$work/$1-$2" start cpu
    start=$(now)
    cpu=$( (
        "run_$1" "$out"
        cpu_us
    ))
    local wall=$(($(now) - start))
    if [[ $1 == buildah ]]; then buildah_times+=("$wall") buildah_cpu+=("$cpu"); else ours_times+=("$wall") ours_cpu+=("$cpu"); fi
}
for ((i = 1; i <= runs; i++)); do
    if ((i % 2)); then
        timed buildah "$i"
        timed ours "$i"
    else
        timed ours "$i"
        timed buildah "$i"
    fi
    echo "run $i: buildah $((buildah_times[-1] / 1000)) ms, build-image $((ours_times[-1] / 1000)) ms" >&2
    rm -rf "$work/buildah-$((i - 1))" "$work/ours-$((i - 1))"
done

median() { printf '%s\n' "$@" | sort -n | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }
buildah_median=$(median "${buildah_times[@]}")
ours_median=$(median "${ours_times[@]}")
buildah_cpu_median=$(median "${buildah_cpu[@]}")
ours_cpu_median=$(median "${ours_cpu[@]}")
buildah_layer=$(layer_size "$work/buildah-$runs")
ours_layer=$(layer_size "$work/ours-$runs")

# The no-op rebuild: the layout from the last run is up to date.
hyperfine --style basic --warmup 3 --runs 30 -N \
    --export-json "$work/noop.json" \
    "$build_image --quiet --binary $input ${level_args[*]} --output $work/ours-$runs" >&2
noop_median=$(grep -m1 '"median"' "$work/noop.json" | tr -dc '0-9.')
noop_us=$(awk -v s="$noop_median" 'BEGIN {printf "%d", s * 1000000}')

"$build_image" verify --quiet "oci:$work/buildah-$runs:latest" >/dev/null
"$build_image" verify --quiet "oci:$work/ours-$runs:latest" >/dev/null

awk -v b="$buildah_median" -v o="$ours_median" -v bc="$buildah_cpu_median" -v oc="$ours_cpu_median" \
    -v n="$noop_us" -v bl="$buildah_layer" -v ol="$ours_layer" -v runs="$runs" \
    -v load="$(cut -d' ' -f1-3 /proc/loadavg)" 'BEGIN {
    printf "\n%d alternating runs each, 32 MiB static executable (load average after: %s)\n", runs, load
    printf "buildah bud + push oci:    median %7.1f ms wall, %7.1f ms CPU   layer %d bytes\n", b / 1000, bc / 1000, bl
    printf "build-image --binary:      median %7.1f ms wall, %7.1f ms CPU   layer %d bytes\n", o / 1000, oc / 1000, ol
    printf "build-image no-op rebuild: median %7.1f ms wall\n", n / 1000
    printf "speed-up over buildah: %.2fx wall (goal >= 3), %.2fx CPU\n", b / o, bc / oc
    printf "layer size vs buildah: %.4f (goal <= 1)\n", ol / bl
    printf "no-op rebuild vs first build: %.1fx faster (goal >= 10)\n", o / n
}'
