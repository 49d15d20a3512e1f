#!/usr/bin/env bash
# Make sure the production-stack services the tests use are up:
# PostgreSQL on 127.0.0.1:5432 and Redis on 127.0.0.1:6379. Starts them
# (the machine's own commands) when they are not, waits until they answer,
# and fails with a clear message otherwise. S3 needs no service: the tests
# start moto's server themselves.
set -euo pipefail

PG_HOST=127.0.0.1
PG_PORT=5432
REDIS_HOST=127.0.0.1
REDIS_PORT=6379
WAIT_SECONDS="${SERVICES_WAIT_SECONDS:-30}"

fail() { echo "services: $*" >&2; exit 1; }

pg_up() { pg_isready -q -h "$PG_HOST" -p "$PG_PORT" >/dev/null 2>&1; }
redis_up() { [[ "$(redis-cli -h "$REDIS_HOST" -p "$REDIS_PORT" ping 2>/dev/null)" == PONG ]]; }

wait_for() {  # wait_for NAME CHECK
    local name=$1 check=$2 i
    for ((i = 0; i < WAIT_SECONDS * 2; i++)); do
        if "$check"; then return 0; fi
        sleep 0.5
    done
    return 1
}

command -v pg_isready >/dev/null || fail "pg_isready not found (install the PostgreSQL client tools: postgresql-client)"
command -v redis-cli >/dev/null || fail "redis-cli not found (install redis-tools)"

# PostgreSQL
if pg_up; then
    echo "services: PostgreSQL up on $PG_HOST:$PG_PORT"
else
    command -v pg_ctlcluster >/dev/null || fail "PostgreSQL is down on $PG_HOST:$PG_PORT and pg_ctlcluster is missing (install postgresql)"
    version="$(ls /etc/postgresql 2>/dev/null | sort -V | tail -n1)"
    [[ -n "$version" ]] || fail "PostgreSQL is down and no cluster exists under /etc/postgresql (install postgresql)"
    echo "services: starting PostgreSQL $version/main"
    pg_ctlcluster --skip-systemctl-redirect "$version" main start \
        || fail "could not start PostgreSQL $version/main (see /var/log/postgresql/)"
    wait_for PostgreSQL pg_up || fail "PostgreSQL did not accept connections on $PG_HOST:$PG_PORT within ${WAIT_SECONDS}s"
    echo "services: PostgreSQL up on $PG_HOST:$PG_PORT"
fi

# Redis
if redis_up; then
    echo "services: Redis up on $REDIS_HOST:$REDIS_PORT"
else
    command -v redis-server >/dev/null || fail "Redis is down on $REDIS_HOST:$REDIS_PORT and redis-server is missing (install redis-server)"
    echo "services: starting Redis"
    mkdir -p /var/lib/redis /var/log/redis
    redis-server --daemonize yes --bind 127.0.0.1 -::1 --port "$REDIS_PORT" --save "" \
        --appendonly no --dir /var/lib/redis --logfile /var/log/redis/ci.log \
        || fail "could not start Redis (see /var/log/redis/ci.log)"
    wait_for Redis redis_up || fail "Redis did not answer PING on $REDIS_HOST:$REDIS_PORT within ${WAIT_SECONDS}s (see /var/log/redis/ci.log)"
    echo "services: Redis up on $REDIS_HOST:$REDIS_PORT"
fi
