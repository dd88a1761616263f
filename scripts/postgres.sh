#!/usr/bin/env bash
# Start, stop or check sevflow's own PostgreSQL cluster on 127.0.0.1 (Debian's packages).
#
#   scripts/postgres.sh start   create the cluster "sevflow" once (pg_createcluster), start it and
#                               make sure role "sevflow" and databases "sevflow" and "sevflow_test" exist
#   scripts/postgres.sh stop    stop the cluster
#   scripts/postgres.sh status  say whether it accepts connections
#   scripts/postgres.sh url     print the service database's URL
#
# Environment: POSTGRES_PORT (15432), POSTGRES_PASSWORD (sevflow: a local development password).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=scripts/lib.sh
. "$here/lib.sh"

port=${POSTGRES_PORT:-15432}
password=${POSTGRES_PASSWORD:-sevflow}
cluster=sevflow

pg_version() {
  ls /usr/lib/postgresql 2>/dev/null | sort -V | tail -n 1
}

as_postgres() {
  if [ "$(id -u)" -eq 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

start() {
  need pg_createcluster "install PostgreSQL from Debian's packages (scripts/install-deps.sh)"
  local v
  v=$(pg_version)
  [ -n "$v" ] || die "no PostgreSQL server found under /usr/lib/postgresql (scripts/install-deps.sh)"
  if ! pg_lsclusters -h | awk '{print $1" "$2}' | grep -qx "$v $cluster"; then
    say "creating PostgreSQL $v cluster '$cluster' on 127.0.0.1:$port"
    pg_createcluster "$v" "$cluster" --port "$port" -- --auth-local=peer --auth-host=scram-sha-256 >/dev/null \
      || die "pg_createcluster failed"
    cat > "/etc/postgresql/$v/$cluster/conf.d/sevflow.conf" <<'CONF'
# sevflow development and test cluster: loopback only, durability traded for speed.
listen_addresses = '127.0.0.1'
fsync = off
synchronous_commit = off
full_page_writes = off
max_connections = 200
CONF
  fi
  if pg_lsclusters -h | awk '$1=="'"$v"'" && $2=="'"$cluster"'" {print $4}' | grep -q online; then
    say "PostgreSQL cluster '$cluster' already running on 127.0.0.1:$port; reusing it"
  else
    say "starting PostgreSQL $v cluster '$cluster' on 127.0.0.1:$port"
    pg_ctlcluster "$v" "$cluster" start || die "pg_ctlcluster $v $cluster start failed (see /var/log/postgresql/)"
  fi
  wait_port 127.0.0.1 "$port" 30 postgres || die "PostgreSQL does not accept connections on 127.0.0.1:$port"
  as_postgres psql -p "$port" -qtAX -v ON_ERROR_STOP=1 -d postgres >/dev/null <<SQL
DO \$\$ BEGIN
  IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'sevflow') THEN
    CREATE ROLE sevflow LOGIN PASSWORD '$password';
  END IF;
  ALTER ROLE sevflow CREATEDB;  -- tests create a throw-away database per run
END \$\$;
SELECT 'CREATE DATABASE sevflow OWNER sevflow' WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = 'sevflow')\gexec
SELECT 'CREATE DATABASE sevflow_test OWNER sevflow' WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = 'sevflow_test')\gexec
SQL
  say "PostgreSQL ready: databases sevflow and sevflow_test on 127.0.0.1:$port"
}

stop() {
  local v
  v=$(pg_version)
  if [ -n "$v" ] && pg_lsclusters -h 2>/dev/null | awk '{print $1" "$2" "$4}' | grep -qx "$v $cluster online"; then
    pg_ctlcluster "$v" "$cluster" stop && say "PostgreSQL cluster '$cluster' stopped"
  else
    say "PostgreSQL cluster '$cluster' is not running"
  fi
}

case ${1:-} in
  start) start ;;
  stop) stop ;;
  status)
    if port_open 127.0.0.1 "$port"; then say "PostgreSQL answers on 127.0.0.1:$port"; else say "PostgreSQL is not running on 127.0.0.1:$port"; exit 1; fi ;;
  url) echo "postgresql://sevflow:$password@127.0.0.1:$port/sevflow" ;;
  *) die "usage: scripts/postgres.sh start|stop|status|url" ;;
esac
