#!/usr/bin/env bash
# Refreshes requirements/runtime.lock and requirements/test.lock, the files `make demo` and
# `make test` install from, out of pyproject.toml (and requirements/installer.in).
#
#   scripts/lock.sh                         keeps every pin the locks hold; adds, pins and
#                                           drops only what pyproject.toml's lists changed
#   scripts/lock.sh --upgrade               every package to its newest release allowed
#   scripts/lock.sh --upgrade-package NAME  that package only (repeat for more)
#
# `make lock` runs it (`make lock LOCK_ARGS=--upgrade`). It needs only python3 with venv and
# PyPI: the resolver (uv, pinned below) goes into a temporary virtualenv, removed at the end,
# with its cache. The locks are universal (any OS, CPython >= 3.11, markers where a package
# is needed on some only) and carry the sha256 of every file PyPI has for each pin, so pip
# installs them in hash-checking mode.
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON=${PYTHON:-python3}
UV_VERSION=0.13.9

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
"$PYTHON" -m venv "$work/venv"
"$work/venv/bin/python" -m pip install --quiet --disable-pip-version-check "uv==$UV_VERSION"

compile() {
    UV_CACHE_DIR="$work/cache" "$work/venv/bin/uv" pip compile --quiet \
        --universal --python-version 3.11 --generate-hashes \
        --custom-compile-command "make lock" "$@"
}

# The runtime set first; the test set is the runtime set, constrained to its very pins,
# plus the test tools: what `make demo` runs is exactly what `make test` tested.
compile pyproject.toml requirements/installer.in \
    -o requirements/runtime.lock "${@}"
compile pyproject.toml requirements/installer.in --extra test \
    -c requirements/runtime.lock -o requirements/test.lock "${@}"

for lock in requirements/runtime.lock requirements/test.lock; do
    echo "$lock: $(grep -c '^[A-Za-z0-9]' "$lock") packages pinned"
done
