# Shared helpers for the scripts in this folder (sourced, not run).
# shellcheck shell=bash

say() { printf '[sevflow] %s\n' "$*" >&2; }
die() { printf '[sevflow] error: %s\n' "$*" >&2; exit 1; }

# need CMD HINT: fail with a message naming the missing prerequisite.
need() {
  command -v "$1" >/dev/null 2>&1 || die "'$1' is not installed: $2"
}

# port_open HOST PORT: true when something accepts TCP connections there.
port_open() {
  (exec 3<>"/dev/tcp/$1/$2") 2>/dev/null
}

# wait_port HOST PORT SECONDS WHAT [PID]: wait until the port accepts connections.
# Gives up early when the process PID has died.
wait_port() {
  local host=$1 port=$2 limit=$3 what=$4 pid=${5:-} i=0
  while ! port_open "$host" "$port"; do
    if [ -n "$pid" ] && ! kill -0 "$pid" 2>/dev/null; then
      return 1
    fi
    i=$((i + 1))
    [ "$i" -le $((limit * 10)) ] || return 1
    sleep 0.1
  done
}

# Where the development services keep their data, logs and pid files.
SEVFLOW_HOME=${SEVFLOW_HOME:-"$HOME/.local/share/sevflow"}
SEVFLOW_CACHE=${SEVFLOW_CACHE:-"$HOME/.cache/sevflow"}
export SEVFLOW_HOME SEVFLOW_CACHE

# test_kafka ACTION: scripts/kafka.sh for the tests' own broker (SEVFLOW_TEST_KAFKA_PORT, 19192,
# controller on the next port), apart from the development broker.
SEVFLOW_TEST_KAFKA_PORT=${SEVFLOW_TEST_KAFKA_PORT:-19192}
test_kafka() {
  KAFKA_PORT=$SEVFLOW_TEST_KAFKA_PORT KAFKA_CONTROLLER_PORT=$((SEVFLOW_TEST_KAFKA_PORT + 1)) \
    "$(dirname "${BASH_SOURCE[0]}")/kafka.sh" "$@"
}
