#!/usr/bin/env bash
# Benchmark: `build-image verify` of the image of a 32 MiB static executable,
# wall time and peak RSS, for one or more build-image binaries side by side
# (an older build against the current one, say).
#
#   build/benches/verify.sh [RUNS] [BUILD-IMAGE...]
#
# RUNS defaults to 20; without binaries it builds and times the workspace's
# release build-image alone. The input is made as in build-vs-buildah.sh:
# the release supervisor followed by real program bytes, truncated to
# 32 MiB (a valid static ELF that compresses like a program). The image is
# written once, by the last binary given, to an OCI layout; each binary then
# verifies it, interleaved by hyperfine's own alternation of commands.
# Peak RSS comes from the kernel's rusage of each verify process.
set -euo pipefail

runs="${1:-20}"
shift || true
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
# shellcheck source=build/benches/input.sh
. "$here/input.sh"
work="$(mktemp -d /tmp/build-image-verify-bench.XXXXXX)"
trap 'rm -rf "$work"' EXIT
command -v hyperfine >/dev/null || { echo "needs hyperfine (apt-get install hyperfine)" >&2; exit 1; }

binaries=("$@")
if ((${#binaries[@]} == 0)); then
    (cd "$root" && cargo build --quiet --release -p build-image)
    binaries=("$root/target/release/build-image")
fi
(cd "$root" && cargo build --quiet --release -p openshell-sandbox --target x86_64-unknown-linux-musl)
supervisor="$root/target/x86_64-unknown-linux-musl/release/openshell-sandbox"

input="$work/openshell-sandbox"
(cd "$root" && make_input "$supervisor" "$input")

layout="$work/layout"
"${binaries[-1]}" --quiet --binary "$input" --output "$layout" --tag bench --no-sbom >/dev/null
source="oci:$layout:bench"
echo "image: $(du -sb "$layout" | cut -f1) bytes in $layout" >&2

commands=()
for binary in "${binaries[@]}"; do
    commands+=("$binary verify --quiet $source")
done
hyperfine --warmup 2 --runs "$runs" --export-json "$work/verify.json" "${commands[@]}" >&2

python3 - "$work/verify.json" "$source" "${binaries[@]}" <<'PY'
import json, resource, subprocess, sys
results = json.load(open(sys.argv[1]))["results"]
source, binaries = sys.argv[2], sys.argv[3:]
def peak_rss(binary):
    # A fresh Python child per measurement: RUSAGE_CHILDREN is the largest
    # peak of the children waited for, here that one verify.
    code = ("import resource,subprocess,sys;"
            "subprocess.run(sys.argv[1:],stdout=subprocess.DEVNULL,check=True);"
            "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)")
    out = subprocess.run([sys.executable, "-c", code, binary, "verify", "--quiet", source],
                         capture_output=True, text=True, check=True).stdout
    return int(out) / 1024
first = results[0]["median"]
print(f"{'build-image':<60} {'median':>9} {'mean':>9} {'peak RSS':>10} {'ratio':>6}")
for binary, result in zip(binaries, results):
    rss = min(peak_rss(binary) for _ in range(3))
    print(f"{binary:<60} {result['median']*1000:8.1f}ms {result['mean']*1000:8.1f}ms "
          f"{rss:8.1f}MiB {result['median']/first:6.2f}")
PY
