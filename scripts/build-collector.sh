#!/usr/bin/env bash
# Builds the OpenTelemetry Collector that the stack tests run, from its Go modules, with the Collector's own
# builder (go.opentelemetry.io/collector/cmd/builder) and the manifest collector-config/builder-manifest.yaml.
#
# The binary is kept in a cache folder keyed by the content of the manifest and its go.sum, so only the first run
# builds (minutes on 2 cores, most of it compiling) and later runs print the path at once. The binary's path is
# the only line on stdout (so also the last); progress goes to stderr.
#
#   bash scripts/build-collector.sh              # -> ~/.cache/llmtrace/otelcol/<key>/otelcol-llmtrace
#   LLMTRACE_OTELCOL_CACHE=/some/dir bash scripts/build-collector.sh
#
# Module checksums are pinned in collector-config/builder-manifest.go.sum: Go verifies every download against it.
# After a change of the manifest, refresh it with `bash scripts/build-collector.sh --update-sums`.
set -euo pipefail

repo=$(cd "$(dirname "$0")/.." && pwd)
manifest=$repo/collector-config/builder-manifest.yaml
sums=$repo/collector-config/builder-manifest.go.sum
update_sums=false
[ "${1:-}" = "--update-sums" ] && update_sums=true

say() { echo "build-collector: $*" >&2; }
die() { say "$*"; exit 1; }

command -v go >/dev/null 2>&1 || die "no Go toolchain on PATH (https://go.dev/doc/install); it builds the Collector"
command -v flock >/dev/null 2>&1 || die "flock (util-linux) is missing"

# The builder's release is the Collector core release the manifest uses (every 0.x core module is at that version).
core_versions=$(sed -n 's#^ *- gomod: go\.opentelemetry\.io/collector/[^ ]* \(v0\.[0-9][0-9.]*\) *$#\1#p' "$manifest" | sort -u)
[ -n "$core_versions" ] && [ "$(wc -l <<<"$core_versions")" -eq 1 ] ||
    die "the core modules in $manifest must all have one version, found: $(echo $core_versions)"
builder_version=$core_versions
dist_name=$(sed -n 's/^  name: *\([A-Za-z0-9_.-]*\) *$/\1/p' "$manifest" | head -n 1)
[ -n "$dist_name" ] || die "no dist.name in $manifest"

cache=${LLMTRACE_OTELCOL_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/llmtrace/otelcol}
key_of() { { cat "$manifest"; [ ! -f "$sums" ] || cat "$sums"; } | sha256sum | cut -c1-16; }
binary=$cache/$(key_of)/$dist_name
mkdir -p "$cache"

if [ -x "$binary" ] && ! $update_sums; then
    say "cached: $binary"
    echo "$binary"
    exit 0
fi

# One build at a time per cache folder (parallel test runs on one machine wait for the first).
exec 9>"$cache/.lock"
flock 9
if [ -x "$binary" ] && ! $update_sums; then
    say "built by another run: $binary"
    echo "$binary"
    exit 0
fi

started=$(date +%s)
builder=$cache/builder-$builder_version/builder
if [ ! -x "$builder" ]; then
    say "installing the builder $builder_version"
    GOBIN=$(dirname "$builder") go install "go.opentelemetry.io/collector/cmd/builder@$builder_version" >&2
fi

work=$(mktemp -d "$cache/build.XXXXXX")
trap 'rm -rf "$work"' EXIT
mkdir "$work/src"
if $update_sums; then
    # New modules are checked against the checksum database (GOSUMDB), as by any `go get`; a module that
    # database does not know can be named in GONOSUMDB for this one run.
    rm -f "$sums"
else
    [ -f "$sums" ] || die "$sums is missing: run this script with --update-sums"
    # With every module of the build in go.sum, Go checks each download against its pinned hash.
    cp "$sums" "$work/src/go.sum"
fi
say "building $dist_name (Collector $builder_version) from $manifest; the first build takes minutes"
if ! DIST_OUTPUT_PATH=$work/src "$builder" --config "$manifest" >"$work/build.log" 2>&1; then
    tail -n 40 "$work/build.log" >&2
    die "the builder failed (log above)"
fi
if $update_sums; then
    cp "$work/src/go.sum" "$sums"
    binary=$cache/$(key_of)/$dist_name
    say "wrote $sums"
fi
mkdir -p "$(dirname "$binary")"
mv "$work/src/$dist_name" "$binary.tmp"
mv "$binary.tmp" "$binary"
say "built in $(( $(date +%s) - started )) s: $binary"
echo "$binary"
