#!/usr/bin/env bash
# Run the whole test suite, slow tests included: sets up .venv, starts PostgreSQL and Redis if
# they are not running, then runs pytest. Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh

if ! pg_isready -q -h 127.0.0.1 -p 5432 2>/dev/null; then
  echo "[test] starting PostgreSQL"
  pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -n 1)" main start
  for _ in $(seq 50); do pg_isready -q -h 127.0.0.1 -p 5432 && break; sleep 0.2; done
fi
if ! redis-cli -h 127.0.0.1 -p 6379 ping >/dev/null 2>&1; then
  echo "[test] starting Redis"
  mkdir -p /var/lib/redis /var/log/redis
  redis-server --daemonize yes --bind 127.0.0.1 -::1 --port 6379 --save "" --appendonly no \
    --dir /var/lib/redis --logfile /var/log/redis/ci.log
fi

# the guardrail review page is tested in a real headless browser (Debian's chromium)
if ! [ -x /usr/bin/chromium ]; then
  echo "[test] installing chromium"
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
fi
export LLMGW_REQUIRE_CHROMIUM=1

export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 OMP_NUM_THREADS=1
export LLMGW_REQUIRE_POSTGRES=1 LLMGW_REQUIRE_REDIS=1
.venv/bin/ruff check llmgw tests bench
.venv/bin/mypy  # llmgw/, settings in pyproject.toml ([tool.mypy])
exec .venv/bin/pytest -m "slow or not slow" -p no:cacheprovider "$@"
