#!/bin/sh
# Prints the state of the checkout that `make test` must leave as it found it: the status
# of every tracked and untracked file, every ignored file (example output, .pipeline/
# databases and working directories), and the content of the tracked files' changes —
# except the environment and the caches the tooling keeps there on purpose.
cd "$(dirname "$0")/.." || exit 1
git status --porcelain=v1 --untracked-files=all
git ls-files --others --ignored --exclude-standard -- . \
  ':!:.venv' ':!:.mypy_cache' ':!:.ruff_cache' ':!:.pytest_cache' ':!:.test-services' \
  ':!:.site' ':!:.schemathesis' ':!:**/__pycache__/**' ':!:**/*.egg-info/**' |
  sed 's/^/ignored: /'
git diff --no-ext-diff --binary | cksum
