#!/usr/bin/env bash
# Benchmark: a fresh clone's first `cargo run -p build-image`, the command a
# newcomer runs first (goal: at most 2 minutes on a 2-core machine, crate
# downloads excluded), then its first push to a loopback registry (goal:
# nothing compiled, at most 10 s) and a no-op rebuild.
#
#   build/benches/first-build.sh [REV]     (default HEAD)
#
# Clones REV of this repository into a temporary folder (so nothing is
# built yet), downloads the crates first (`cargo fetch`, not timed), then
# times `cargo run -p build-image` with --timings from an empty target
# folder. Then it starts docker-registry on 127.0.0.1 and times the first
# `cargo run -p build-image -- --push 127.0.0.1:PORT/...`, failing if cargo
# compiled anything for it, and a second, no-op `cargo run -p build-image`.
# Then, as evidence of where the time goes, it wipes the release
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
registry_pid=
cleanup() {
    [[ -z $registry_pid ]] || kill "$registry_pid" 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT
command -v docker-registry >/dev/null ||
    { echo "docker-registry is missing: apt-get install docker-registry (or scripts/setup-test-env)" >&2; exit 1; }

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

# A loopback registry on a free port, with storage in the work folder.
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
printf '%s\n' 'version: 0.1' 'log:' '  level: error' 'storage:' '  filesystem:' \
    "    rootdirectory: $work/registry" 'http:' "  addr: 127.0.0.1:$port" >"$work/registry.yml"
docker-registry serve "$work/registry.yml" >"$work/registry.log" 2>&1 &
registry_pid=$!
for _ in $(seq 100); do
    (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break
    sleep 0.1
done
# Not --quiet: cargo says "Compiling" for anything it builds.
timed "first push: cargo run -p build-image -- --push 127.0.0.1:$port/openshell/supervisor:bench" \
    cargo run -p build-image -- --push "127.0.0.1:$port/openshell/supervisor:bench" --plain-http
if grep -E '^ *Compiling ' "$work/log"; then
    echo "the first push compiled the crates above" >&2
    exit 1
fi
echo "first push compiled nothing: $(grep -E '^ *(Finished|Running)' "$work/log" | tr -s ' ' | paste -sd ';')"
timed "no-op rebuild: cargo run -p build-image" cargo run --quiet -p build-image
rm -rf target/release target/*-unknown-linux-*
timed "of which the supervisor (${targets[*]})" \
    cargo build --release -p openshell-sandbox --bin openshell-sandbox "${targets[@]}" --timings
cp target/cargo-timings/cargo-timing.html "$reports/supervisor-release.html"
echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "cargo timing reports: $reports/"
