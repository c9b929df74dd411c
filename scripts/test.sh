#!/usr/bin/env bash
# The whole test suite, as CI runs it: set up .venv, make sure Chromium and PostgreSQL are there (the
# browser and Postgres tests are real, not mocked), start a throwaway PostgreSQL, run pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 TOKENIZERS_PARALLELISM=false
if [ ! -x /usr/bin/chromium ] && command -v apt-get >/dev/null 2>&1; then
  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null) \
    || echo "warning: could not install chromium; browser tests will fail" >&2
fi
if [ -z "${TRANSFEROPS_TEST_PG_URL:-}" ] && [ -f scripts/start_postgres.sh ]; then
  before=$(ls -d /tmp/transferops-pg.* 2>/dev/null || true)
  if url=$(bash scripts/start_postgres.sh); then
    export TRANSFEROPS_TEST_PG_URL="$url"
    # Stop the throwaway cluster when the tests end, whatever their outcome.
    for d in /tmp/transferops-pg.*; do
      case "$before" in *"$d"*) ;; *) trap "bash '$d/stop.sh' >/dev/null 2>&1 || true" EXIT ;; esac
    done
  else
    echo "warning: could not start PostgreSQL; postgres tests will fail" >&2
  fi
fi
.venv/bin/python -m pytest -q -p no:cacheprovider --timeout=900 "$@"
