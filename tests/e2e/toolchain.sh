#!/usr/bin/env bash
# Build the real engines the e2e tests drive, from Go modules, at pinned versions, into the tool cache:
#
#   $CACHE/pulumi-bin/pulumi                          Pulumi CLI (github.com/pulumi/pulumi/pkg/v3)
#   $CACHE/pulumi-bin/pulumi-language-python          Python language host
#   $CACHE/pulumi-bin/pulumi-language-python-exec     ... and the Python shim it runs (must sit next to it)
#   $CACHE/pulumi-bin/pulumi-resource-pulumi-python   dynamic-provider host, shipped next to `pulumi` upstream
#   $CACHE/pulumi-bin/pulumi-resource-command         command provider 1.2.1 (only if the Go proxy serves it)
#   $CACHE/otelcol/otelcol-openclaw                   OTel Collector built with ocb from otelcol-builder.yaml
#
# CACHE is ${OPENCLAW_USAGE_CACHE:-$HOME/.cache/openclaw-usage}; GOMODCACHE and GOCACHE live there too so
# CI reuses downloads and compiled packages.  Each part writes a stamp recording what it was built from;
# a matching stamp plus the binaries means "reuse", so a warm cache makes this script a fast no-op.
#
# Why each binary is built the way it is (facts checked against the Go module proxy, 2026-12):
# - pkg/v3's go.mod has `replace` directives, so `go install .../cmd/pulumi@v` is refused; we build inside a
#   throwaway module that requires pkg/v3 and sdk/v3 at the same version.  pkg/v3 v3.272.0 (our PyPI
#   version) and v3.273.0 are not served; v3.274.1 is the nearest newer release the proxy serves.
# - The Python language host moved out of sdk/v3 into its own module (github.com/pulumi/pulumi/sdk/python/
#   cmd/pulumi-language-python/v3, never tagged), which the proxy refuses at every version and commit (403
#   "This module version is not available").  sdk/v3 v3.68.0 is the newest served release that still
#   contains the host as a package (v3.90.0 no longer does), so that is the host we build.  The CLI drives it through
#   its backwards-compatible fallbacks (no Handshake, GetRequiredPlugins instead of GetRequiredPackages),
#   but it ignores Pulumi.yaml `runtime.options`: select the interpreter with PULUMI_PYTHON_CMD (see
#   tests/e2e/pulumi_env.py).  Its exec shim and the dynamic-provider script come from sdk/v3 at the CLI's
#   version, matching the Python SDK we run.
# - pulumi-resource-command 1.2.1 lives in module github.com/pulumi/pulumi-command/provider, which the proxy
#   refuses (403) at every version and commit; the root module's v1.2.1 holds only docs.  The script asks
#   once, says loudly that it is unavailable and records that, instead of failing the whole toolchain.
set -euo pipefail

PULUMI_VERSION=3.274.1            # CLI; >= PyPI pulumi 3.272.0, nearest release served by the Go proxy
PULUMI_PYTHON_HOST_VERSION=3.68.0 # newest served sdk/v3 that still contains python/cmd/pulumi-language-python
PULUMI_COMMAND_VERSION=1.2.1      # must match PyPI pulumi-command
PULUMI_COMMAND_MODULE=github.com/pulumi/pulumi-command/provider
PULUMI_COMMAND_PSEUDO=v0.0.0-20260303235922-7f3eb6f3b77c # commit of tag v1.2.1 (provider/ has no own tags)
OCB_VERSION=0.159.0               # = image otel/opentelemetry-collector-contrib:0.159.0
OTELCOL_NAME=otelcol-openclaw     # = dist.name in otelcol-builder.yaml

CACHE=${OPENCLAW_USAGE_CACHE:-$HOME/.cache/openclaw-usage}
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
MANIFEST=$HERE/otelcol-builder.yaml
PULUMI_BIN=$CACHE/pulumi-bin
OTELCOL_DIR=$CACHE/otelcol
LOG_DIR=$CACHE/logs

export GOTOOLCHAIN=local
export GOFLAGS=-mod=mod
export GOMODCACHE=$CACHE/go/mod
export GOCACHE=$CACHE/go/build
export GOBIN=$CACHE/go/bin
# ocb runs `go` itself; keep it from picking up a go.work of an enclosing directory.
export GOWORK=off

say() { printf 'toolchain: %s\n' "$*" >&2; }
die() { printf 'toolchain: ERROR: %s\n' "$*" >&2; exit 1; }

command -v go >/dev/null || die "no 'go' on PATH; Go >= 1.26.6 is needed to build the Pulumi CLI and the collector"
GO_VERSION=$(go env GOVERSION)
mkdir -p "$PULUMI_BIN" "$OTELCOL_DIR" "$GOMODCACHE" "$GOCACHE" "$GOBIN" "$LOG_DIR"

# stamp_ok STAMP KEY FILE... : the stamp holds KEY and every FILE exists and is executable.
stamp_ok() {
    local stamp=$1 key=$2
    shift 2
    [[ -f $stamp && $(cat "$stamp") == "$key" ]] || return 1
    local f
    for f in "$@"; do [[ -x $f ]] || return 1; done
}

# run_logged NAME CMD... : run a build step with its output in a log file; on failure show the tail and stop.
run_logged() {
    local name=$1
    shift
    local log=$LOG_DIR/$name.log
    if ! "$@" >"$log" 2>&1; then
        tail -n 40 "$log" >&2
        die "$name failed (full log: $log)"
    fi
}

# throwaway_module NAME : a fresh empty module directory to build one binary in, so each binary keeps its
# own minimal-version-selection graph.
throwaway_module() {
    local dir=$CACHE/build/$1
    rm -rf "$dir"
    mkdir -p "$dir"
    printf 'module local.invalid/%s\n\ngo 1.26\n' "$1" >"$dir/go.mod"
    printf '%s\n' "$dir"
}

SUMMARY=()
note() { SUMMARY+=("$1"); }

build_pulumi_cli() {
    local key="pulumi-cli pkg/v3@v$PULUMI_VERSION $GO_VERSION"
    local stamp=$PULUMI_BIN/.stamp-pulumi
    if stamp_ok "$stamp" "$key" "$PULUMI_BIN/pulumi"; then
        note "reused  pulumi v$PULUMI_VERSION"
        return
    fi
    say "building pulumi v$PULUMI_VERSION (cold cache: ~30 min on 2 busy cores) ..."
    local start=$SECONDS dir
    dir=$(throwaway_module pulumi-cli)
    # pkg/v3 replaces atotto/clipboard with a fork; replaces of a dependency are ignored, so copy it.
    printf '\nreplace github.com/atotto/clipboard => github.com/tgummerer/clipboard v0.0.0-20241001131231-d02d263e614e\n' \
        >>"$dir/go.mod"
    rm -f "$stamp"
    (
        cd "$dir"
        run_logged pulumi-cli-get go get "github.com/pulumi/pulumi/pkg/v3@v$PULUMI_VERSION" \
            "github.com/pulumi/pulumi/sdk/v3@v$PULUMI_VERSION"
        run_logged pulumi-cli-build go build -trimpath -o "$PULUMI_BIN/pulumi.new" \
            -ldflags "-X github.com/pulumi/pulumi/sdk/v3/go/common/version.Version=v$PULUMI_VERSION" \
            github.com/pulumi/pulumi/pkg/v3/cmd/pulumi
    )
    mv -f "$PULUMI_BIN/pulumi.new" "$PULUMI_BIN/pulumi"
    printf '%s' "$key" >"$stamp"
    note "built   pulumi v$PULUMI_VERSION in $((SECONDS - start)) s"
}

build_python_host() {
    local key="python-host sdk/v3@v$PULUMI_PYTHON_HOST_VERSION exec@v$PULUMI_VERSION $GO_VERSION"
    local stamp=$PULUMI_BIN/.stamp-python-host
    local files=("$PULUMI_BIN/pulumi-language-python" "$PULUMI_BIN/pulumi-language-python-exec"
        "$PULUMI_BIN/pulumi-resource-pulumi-python")
    if stamp_ok "$stamp" "$key" "${files[@]}"; then
        note "reused  pulumi-language-python v$PULUMI_PYTHON_HOST_VERSION (+ exec shim from sdk v$PULUMI_VERSION)"
        return
    fi
    say "building pulumi-language-python v$PULUMI_PYTHON_HOST_VERSION (cold cache: ~2 min) ..."
    local start=$SECONDS dir sdk_dir
    dir=$(throwaway_module pulumi-language-python)
    rm -f "$stamp"
    (
        cd "$dir"
        run_logged python-host-get go get "github.com/pulumi/pulumi/sdk/v3@v$PULUMI_PYTHON_HOST_VERSION"
        run_logged python-host-build go build -trimpath -o "$PULUMI_BIN/pulumi-language-python.new" \
            -ldflags "-X github.com/pulumi/pulumi/sdk/v3/go/common/version.Version=v$PULUMI_PYTHON_HOST_VERSION" \
            github.com/pulumi/pulumi/sdk/v3/python/cmd/pulumi-language-python
    )
    mv -f "$PULUMI_BIN/pulumi-language-python.new" "$PULUMI_BIN/pulumi-language-python"
    # The scripts Pulumi ships next to its binaries, from the sdk release matching the CLI (and our SDK).
    run_logged sdk-download go mod download "github.com/pulumi/pulumi/sdk/v3@v$PULUMI_VERSION"
    sdk_dir=$(go mod download -json "github.com/pulumi/pulumi/sdk/v3@v$PULUMI_VERSION" |
        sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')
    [[ -d $sdk_dir ]] || die "could not locate sdk/v3@v$PULUMI_VERSION in the module cache"
    install -m 0755 "$sdk_dir/python/cmd/pulumi-language-python-exec" "$PULUMI_BIN/pulumi-language-python-exec"
    install -m 0755 "$sdk_dir/python/dist/pulumi-resource-pulumi-python" "$PULUMI_BIN/pulumi-resource-pulumi-python"
    printf '%s' "$key" >"$stamp"
    note "built   pulumi-language-python v$PULUMI_PYTHON_HOST_VERSION in $((SECONDS - start)) s"
}

build_command_provider() {
    local key="command-provider $PULUMI_COMMAND_MODULE@$PULUMI_COMMAND_PSEUDO as $PULUMI_COMMAND_VERSION $GO_VERSION"
    local stamp=$PULUMI_BIN/.stamp-command
    if stamp_ok "$stamp" "$key" "$PULUMI_BIN/pulumi-resource-command"; then
        note "reused  pulumi-resource-command $PULUMI_COMMAND_VERSION"
        return
    fi
    if [[ -f $stamp.unavailable && $(cat "$stamp.unavailable") == "$key" ]]; then
        note "MISSING pulumi-resource-command $PULUMI_COMMAND_VERSION: proxy refused it earlier ($stamp.unavailable; delete it to retry)"
        return
    fi
    say "building pulumi-resource-command $PULUMI_COMMAND_VERSION ..."
    local start=$SECONDS dir
    dir=$(throwaway_module pulumi-resource-command)
    rm -f "$stamp"
    local log=$LOG_DIR/command-provider-get.log
    if ! (cd "$dir" && go get "$PULUMI_COMMAND_MODULE@$PULUMI_COMMAND_PSEUDO") >"$log" 2>&1; then
        if grep -q '403 Forbidden\|not available' "$log"; then
            # The registry's answer is final: record it so a warm run does not ask again.
            printf '%s' "$key" >"$stamp.unavailable"
            say "WARNING: the Go module proxy does not serve $PULUMI_COMMAND_MODULE; pulumi-resource-command NOT built:"
            sed 's/^/toolchain:   /' "$log" >&2
            note "MISSING pulumi-resource-command $PULUMI_COMMAND_VERSION: $PULUMI_COMMAND_MODULE not served by the Go proxy"
            return
        fi
        tail -n 40 "$log" >&2
        die "command-provider-get failed (full log: $log)"
    fi
    (
        cd "$dir"
        # No -trimpath here: with it, `go version -m` drops the -ldflags, and the tests read the stamp there.
        run_logged command-provider-build go build -o "$PULUMI_BIN/pulumi-resource-command.new" \
            -ldflags "-X github.com/pulumi/pulumi-command/provider/pkg/version.Version=$PULUMI_COMMAND_VERSION" \
            github.com/pulumi/pulumi-command/provider/cmd/pulumi-resource-command
    )
    mv -f "$PULUMI_BIN/pulumi-resource-command.new" "$PULUMI_BIN/pulumi-resource-command"
    printf '%s' "$key" >"$stamp"
    note "built   pulumi-resource-command $PULUMI_COMMAND_VERSION in $((SECONDS - start)) s"
}

build_otelcol() {
    local manifest_sum key
    manifest_sum=$(sha256sum "$MANIFEST" | cut -d' ' -f1)
    key="otelcol ocb@v$OCB_VERSION manifest-sha256=$manifest_sum $GO_VERSION"
    local stamp=$OTELCOL_DIR/.stamp
    if stamp_ok "$stamp" "$key" "$OTELCOL_DIR/otelcol-openclaw"; then
        note "reused  otelcol-openclaw $OCB_VERSION"
        return
    fi
    say "building otelcol-openclaw $OCB_VERSION with ocb (cold cache: ~7 min) ..."
    local start=$SECONDS
    rm -f "$stamp"
    if [[ ! -x $GOBIN/ocb-$OCB_VERSION ]]; then
        run_logged ocb-install go install "go.opentelemetry.io/collector/cmd/builder@v$OCB_VERSION"
        mv -f "$GOBIN/builder" "$GOBIN/ocb-$OCB_VERSION"
    fi
    local dir=$CACHE/build/otelcol
    rm -rf "$dir"
    mkdir -p "$dir"
    # The manifest's output_path (./dist) is relative to the directory ocb runs in.
    cp "$MANIFEST" "$dir/manifest.yaml"
    (
        cd "$dir"
        run_logged otelcol-build "$GOBIN/ocb-$OCB_VERSION" --config manifest.yaml
    )
    [[ -x $dir/dist/$OTELCOL_NAME ]] ||
        die "ocb finished but $dir/dist/$OTELCOL_NAME is missing (log: $LOG_DIR/otelcol-build.log)"
    mv -f "$dir/dist/$OTELCOL_NAME" "$OTELCOL_DIR/otelcol-openclaw"
    printf '%s' "$key" >"$stamp"
    note "built   otelcol-openclaw $OCB_VERSION in $((SECONDS - start)) s"
}

build_pulumi_cli
build_python_host
build_command_provider
build_otelcol

say "summary (cache: $CACHE):"
for line in "${SUMMARY[@]}"; do say "  $line"; done
