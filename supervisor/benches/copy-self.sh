#!/usr/bin/env bash
# Benchmark: `openshell-sandbox copy-self` of a 32 MiB executable against
# `cp` followed by `sha256sum` of the copy (the goal: copy-self no slower than
# 1.5 times that), measured in the same hyperfine run.
#
# Usage: supervisor/benches/copy-self.sh [RUNS]     (default 20 runs each)
#
# copy-self does more than cp: it hashes while copying, fsyncs the file,
# reads it back to verify, renames and fsyncs the directory. For context the
# run also times `cp` + `sync FILE` + `sha256sum` (the same durability), and a
# rerun onto an identical DEST (the init-container restart case, a no-op).
#
# Needs: cargo with the x86_64-unknown-linux-musl target, hyperfine, python3
# (for the ratios). Results: target/bench/copy-self.json (hyperfine's export)
# and target/bench/copy-self-rerun.json. The files are written under
# target/, on the same file system as the build, not on a tmpfs.
set -euo pipefail

runs=${1:-20}
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
target_triple=x86_64-unknown-linux-musl
size=$((32 * 1024 * 1024))

for tool in cargo hyperfine python3 sha256sum; do
    command -v "$tool" >/dev/null || {
        echo "copy-self.sh: $tool is needed (hyperfine: apt-get install hyperfine)" >&2
        exit 1
    }
done

echo "building the release supervisor for $target_triple ..." >&2
(cd "$root" && cargo build --quiet --release --locked -p openshell-sandbox \
    --bin openshell-sandbox --target "$target_triple")
binary="$root/target/$target_triple/release/openshell-sandbox"

out_dir="$root/target/bench"
mkdir -p "$out_dir"
work=$(mktemp -d "$out_dir/copy-self.XXXXXX")
trap 'rm -rf "$work"' EXIT

# A 32 MiB executable made of ordinary program bytes: the supervisor followed
# by copies of itself. Bytes after the ELF image do not stop it from running,
# and copy-self copies whatever file it was started from.
big="$work/openshell-sandbox-32m"
while [ "$(stat -c %s "$big" 2>/dev/null || echo 0)" -lt "$size" ]; do
    cat "$binary" >>"$big"
done
truncate -s "$size" "$big"
chmod 0755 "$big"
"$big" --version >/dev/null

dest_dir="$work/dest"
mkdir -p "$dest_dir"
dest="$dest_dir/openshell-sandbox"

echo "copy-self vs cp + sha256sum, ${runs} runs each, $((size / 1024 / 1024)) MiB ..." >&2
# DEST is removed before each run: a rerun onto an identical DEST is a no-op,
# timed separately below.
hyperfine --style basic --warmup 3 --runs "$runs" \
    --export-json "$out_dir/copy-self.json" \
    --prepare "rm -f '$dest'" --command-name "copy-self" \
    "'$big' copy-self '$dest' >/dev/null" \
    --prepare "rm -f '$dest'" --command-name "cp + sha256sum" \
    "cp '$big' '$dest' && sha256sum '$dest' >/dev/null" \
    --prepare "rm -f '$dest'" --command-name "cp + sync + sha256sum" \
    "cp '$big' '$dest' && sync '$dest' && sha256sum '$dest' >/dev/null"

echo "rerun of copy-self onto an identical DEST ..." >&2
"$big" copy-self "$dest" >/dev/null
hyperfine --style basic --warmup 3 --runs "$runs" \
    --export-json "$out_dir/copy-self-rerun.json" \
    --command-name "copy-self (identical DEST)" \
    "'$big' copy-self '$dest' >/dev/null"

python3 - "$out_dir/copy-self.json" "$out_dir/copy-self-rerun.json" <<'EOF'
import json
import sys

results = {}
for path in sys.argv[1:]:
    for result in json.load(open(path))["results"]:
        results[result["command"]] = result

def line(name):
    r = results[name]
    return f"{name:28} mean {r['mean'] * 1000:8.1f} ms  ± {r['stddev'] * 1000:5.1f} ms  (min {r['min'] * 1000:.1f} ms)"

print()
for name in results:
    print(line(name))
base = results["cp + sha256sum"]["mean"]
ratio = results["copy-self"]["mean"] / base
print()
print(f"copy-self / (cp + sha256sum)        = {ratio:.2f}  (goal: at most 1.50)")
print(f"copy-self / (cp + sync + sha256sum) = {results['copy-self']['mean'] / results['cp + sync + sha256sum']['mean']:.2f}")
print(f"identical rerun / copy-self         = {results['copy-self (identical DEST)']['mean'] / results['copy-self']['mean']:.2f}")
print("goal met" if ratio <= 1.5 else "goal NOT met")
EOF
