#!/usr/bin/env bash
# Benchmark: a fresh clone's first `cargo run -p build-image`, the command a
# newcomer runs first (goal: at most 2 minutes on a 2-core machine, crate
# downloads excluded).
#
#   build/benches/first-build.sh [REV]     (default HEAD)
#
# Clones REV of this repository into a temporary folder (so nothing is
# built yet), downloads the crates first (`cargo fetch`, not timed), then
# times `cargo run -p build-image` with --timings from an empty target
# folder. Then, as evidence of where the time goes, it wipes the release
# builds and times the supervisor's build alone with --timings. The two
# cargo timing reports are copied to target/bench/first-build/ of this
# checkout. Prints wall and CPU time of both and the load average, since the
# wall time means little on a machine that is busy with other work.
set -euo pipefail

rev="${1:-HEAD}"
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
work="$(mktemp -d /tmp/first-build.XXXXXX)"
reports="$root/target/bench/first-build"
trap 'rm -rf "$work"' EXIT

git clone --quiet "$root" "$work/clone"
git -C "$work/clone" checkout --quiet "$rev"
cd "$work/clone"
export CARGO_TARGET_DIR="$work/clone/target"
echo "downloading crates (not timed) ..." >&2
cargo fetch --locked --quiet

# Rust targets of the default platforms, as the toolchain file names them.
targets=()
for target in $(sed -n 's/^targets *= *//p' rust-toolchain.toml 2>/dev/null | grep -o '"[^"]*"' | tr -d '"'); do
    targets+=(--target "$target")
done
((${#targets[@]})) || targets=(--target x86_64-unknown-linux-musl)

mkdir -p "$reports"
timed() { # LABEL COMMAND...: prints wall and CPU seconds of COMMAND
    local label=$1
    shift
    /usr/bin/time -f "$label: %e s wall, %U s user + %S s system CPU" -o "$work/time" "$@" \
        >"$work/log" 2>&1 || { cat "$work/log" >&2; exit 1; }
    cat "$work/time"
}
echo "load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
timed "fresh clone: cargo run -p build-image" cargo run --quiet -p build-image --timings
cp target/cargo-timings/cargo-timing.html "$reports/build-image-dev.html"
grep -E '^(image|linux/)' "$work/log" || true
rm -rf target/release target/*-unknown-linux-*
timed "of which the supervisor (${targets[*]})" \
    cargo build --release -p openshell-sandbox --bin openshell-sandbox "${targets[@]}" --timings
cp target/cargo-timings/cargo-timing.html "$reports/supervisor-release.html"
echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "cargo timing reports: $reports/"
