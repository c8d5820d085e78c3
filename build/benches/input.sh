# Sourced by the build-image benchmarks: make_input SUPERVISOR OUT writes a
# 32 MiB executable to OUT, the release supervisor followed by other real
# program bytes found on this machine, so it compresses like a program.
# Prints what went into it on stderr.
make_input() {
    local supervisor=$1 out=$2 sysroot candidate
    local size=$((32 * 1024 * 1024))
    local extra=()
    sysroot="$(rustc --print sysroot)"
    for candidate in /bin/busybox /usr/bin/docker-registry /usr/bin/skopeo /usr/bin/umoci /usr/bin/buildah \
        "$sysroot"/lib/rustlib/*/bin/rust-lld "$sysroot"/bin/cargo; do
        [[ -f "$candidate" ]] && extra+=("$candidate")
    done
    # head closes the pipe early, so cat dies of SIGPIPE: not an error here.
    cat "$supervisor" "${extra[@]}" | head -c "$size" >"$out" || true
    [[ $(stat -c %s "$out") -eq $size ]] || { echo "could not make a 32 MiB input" >&2; return 1; }
    chmod 0755 "$out"
    echo "input: $size bytes: $supervisor + ${extra[*]}" >&2
}
