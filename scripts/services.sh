#!/usr/bin/env bash
# Make sure the services the test suite talks to answer on 127.0.0.1:
# PostgreSQL on 5432 (trust auth, user postgres) and Redis on 6379.
# Installs them from Debian's packages when missing (needs root), starts them
# when stopped, and waits until they answer. Safe to run again.
set -euo pipefail

apt_install() {
  if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null; then
    echo "missing $*: install it, or run this script as root on Debian/Ubuntu" >&2
    exit 1
  fi
  [ -n "${APT_UPDATED:-}" ] || { apt-get update -qq; APT_UPDATED=1; }
  DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=300 install -y -qq "$@" >/dev/null
}

pg_answers() { pg_isready -q -h 127.0.0.1 -p 5432 2>/dev/null; }
redis_answers() { [ "$(redis-cli -h 127.0.0.1 -p 6379 ping 2>/dev/null)" = PONG ]; }

if ! pg_answers; then
  command -v pg_ctlcluster >/dev/null || apt_install postgresql
  version=$(ls /etc/postgresql | sort -V | tail -1)
  echo "starting PostgreSQL $version"
  pg_ctlcluster --skip-systemctl-redirect "$version" main start || true
  conf=/etc/postgresql/$version/main/pg_hba.conf
  # The tests connect as postgres over TCP without a password (trust, local only).
  if ! grep -qE '^host\s+all\s+all\s+127.0.0.1/32\s+trust' "$conf"; then
    sed -i '1i host all all 127.0.0.1/32 trust' "$conf"
    pg_ctlcluster --skip-systemctl-redirect "$version" main reload
  fi
fi
if ! redis_answers; then
  command -v redis-server >/dev/null || apt_install redis-server
  echo "starting Redis"
  mkdir -p /var/lib/redis /var/log/redis
  redis-server --daemonize yes --bind 127.0.0.1 -::1 --port 6379 --save "" --appendonly no \
    --dir /var/lib/redis --logfile /var/log/redis/ci.log
fi
for _ in $(seq 60); do
  if pg_answers && redis_answers; then
    echo "PostgreSQL and Redis answer on 127.0.0.1"
    exit 0
  fi
  sleep 1
done
echo "PostgreSQL or Redis did not come up on 127.0.0.1" >&2
exit 1
