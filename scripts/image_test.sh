#!/usr/bin/env bash
# make image-test: build the Dockerfile without a registry and check the image from inside.
#
# podman/buildah (Debian packages) build from a base image made locally with mmdebstrap
# (Debian bookworm minbase + python3 + python3-venv), imported as BASE_IMAGE. Containers cannot
# be started with `podman run` on these machines, so the checks use `buildah run --isolation
# chroot` on a working container of the image.
#
# Checks: the image builds; `omni-secrets --help` works; `serve` without configuration exits 2
# with one "configuration rejected" line; the user is non-root; no pip and no compiler inside;
# entrypoint omni-secrets, default command serve.
#
# Settings: IMAGE_TEST_BASE (default localhost/omni-secrets-test-base; built once, reused),
# IMAGE_TEST_REBUILD_BASE=true to rebuild it, PIP_CA (CA bundle handed to the build as a secret,
# for TLS-intercepting proxies; default /etc/ssl/certs/ca-certificates.crt when present).
set -euo pipefail
cd "$(dirname "$0")/.."

BASE="${IMAGE_TEST_BASE:-localhost/omni-secrets-test-base}"
IMAGE="${IMAGE_TEST_IMAGE:-localhost/omni-secrets:image-test}"
PIP_CA="${PIP_CA:-/etc/ssl/certs/ca-certificates.crt}"

fail() { echo "image-test: FAILED: $*" >&2; exit 1; }
step() { echo "image-test: [$(( SECONDS ))s] $*"; }

for tool in podman buildah mmdebstrap; do
  command -v "$tool" >/dev/null 2>&1 \
    || fail "$tool is not on PATH (apt-get install podman buildah mmdebstrap)"
done

work="$(mktemp -d)"
container=""
cleanup() {
  if [ -n "$container" ]; then buildah rm "$container" >/dev/null 2>&1 || true; fi
  rm -rf "$work"
}
trap cleanup EXIT

if [ "${IMAGE_TEST_REBUILD_BASE:-false}" = true ] || ! podman image exists "$BASE"; then
  step "base: mmdebstrap --variant=minbase --include=python3,python3-venv bookworm"
  mmdebstrap --quiet --variant=minbase --include=python3,python3-venv bookworm "$work/base.tar"
  podman import --quiet "$work/base.tar" "$BASE" >/dev/null
  rm -f "$work/base.tar"
else
  step "base: reusing $BASE (IMAGE_TEST_REBUILD_BASE=true rebuilds it)"
fi

step "podman build --isolation chroot"
secret=()
if [ -s "$PIP_CA" ]; then secret=(--secret "id=pip-ca,src=$PIP_CA"); fi
podman build --quiet --isolation chroot "${secret[@]}" --build-arg "BASE_IMAGE=$BASE" \
  -t "$IMAGE" . >/dev/null || fail "podman build"

container="$(buildah from --quiet "$IMAGE")"
in_image() { buildah run --isolation chroot "$container" -- "$@"; }

step "checks inside the image"
config="$(buildah inspect --format '{{.OCIv1.Config.User}}|{{.OCIv1.Config.Entrypoint}}|{{.OCIv1.Config.Cmd}}' "$container")"
IFS='|' read -r user entrypoint cmd <<<"$config"
[ "$entrypoint" = "[omni-secrets]" ] || fail "entrypoint is $entrypoint"
[[ "$cmd" == "[serve "* ]] || fail "default command is $cmd"
case "${user%%:*}" in ""|0|root) fail "image user is '$user' (must be a non-root uid)" ;; esac
uid="$(in_image id -u)"
[ "$uid" != "0" ] || fail "runs as root"

# `--version` arrives with issue 16; until then --help proves the entry point and imports work.
if in_image omni-secrets --version >"$work/version" 2>&1; then
  step "omni-secrets --version: $(head -n1 "$work/version")"
else
  in_image omni-secrets --help >"$work/help" 2>&1 || fail "omni-secrets --help: $(cat "$work/help")"
  grep -q "Usage: omni-secrets" "$work/help" || fail "omni-secrets --help printed no usage"
  step "omni-secrets --help: ok (no --version yet)"
fi

set +e
in_image omni-secrets serve >"$work/serve.out" 2>"$work/serve.err"
status=$?
set -e
[ "$status" -eq 2 ] || fail "serve without configuration exited $status, expected 2: $(cat "$work/serve.err")"
# buildah adds its own "subprocess exited with status 2" / "Error: exit status 2" lines.
grep -v -E '^(subprocess exited with status|Error: exit status) [0-9]+$' "$work/serve.err" \
  >"$work/serve.own" || true
mv "$work/serve.own" "$work/serve.err"
lines="$(grep -c . "$work/serve.err" || true)"
[ "$lines" -eq 1 ] || fail "serve printed $lines lines on stderr, expected one: $(cat "$work/serve.err")"
grep -q "configuration rejected" "$work/serve.err" || fail "serve refusal: $(cat "$work/serve.err")"
grep -q "Traceback" "$work/serve.err" && fail "serve printed a traceback"
step "omni-secrets serve without config: exit 2, one line"

# shellcheck disable=SC2016  # "$t" is expanded by the image's sh, not here
in_image sh -c 'for t in pip pip3 gcc cc; do if command -v "$t"; then exit 1; fi; done' \
  || fail "pip or a compiler is on PATH in the image"
if in_image python3 -m pip --version >/dev/null 2>&1; then fail "python3 -m pip works in the image"; fi
if in_image /opt/omni-secrets/bin/python -m pip --version >/dev/null 2>&1; then
  fail "the virtualenv has pip"
fi
step "no pip, no compiler"

size="$(podman image inspect --format '{{.Size}}' "$IMAGE")"
step "PASSED: $IMAGE ($(( size / 1024 / 1024 )) MiB) in ${SECONDS}s"
