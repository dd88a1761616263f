#!/usr/bin/env bash
# Start, stop or check a single-node Apache Kafka 4.x broker (KRaft) on 127.0.0.1.
#
#   scripts/kafka.sh start    fetch the broker jars with Maven (cached), format storage once,
#                             start kafka.Kafka with java and wait until it accepts clients
#   scripts/kafka.sh fresh    like start, but a broker that is not running starts on empty
#                             storage (for throwaway brokers such as the tests' own)
#   scripts/kafka.sh stop     stop the broker this script started (SIGTERM, clean shutdown)
#   scripts/kafka.sh status   say whether a broker answers on the port
#   scripts/kafka.sh reset    stop and delete the broker's data
#
# Environment: KAFKA_PORT (19092), KAFKA_CONTROLLER_PORT (19093), KAFKA_HEAP (512m),
# SEVFLOW_HOME (~/.local/share/sevflow: data, logs), SEVFLOW_CACHE (~/.cache/sevflow: jars).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=scripts/lib.sh
. "$here/lib.sh"

port=${KAFKA_PORT:-19092}
controller_port=${KAFKA_CONTROLLER_PORT:-19093}
heap=${KAFKA_HEAP:-512m}
kafka_version=$(sed -n 's:.*<kafka.version>\(.*\)</kafka.version>.*:\1:p' "$here/kafka/pom.xml")
libs="$SEVFLOW_CACHE/kafka-$kafka_version/libs"
state="$SEVFLOW_HOME/kafka-$port"
pidfile="$state/broker.pid"

fetch_jars() {
  if [ -f "$libs/.complete" ]; then
    return
  fi
  need java "install a Java 17+ runtime (Debian: apt-get install openjdk-17-jre-headless)"
  need mvn "install Apache Maven (Debian: apt-get install maven)"
  say "fetching Apache Kafka $kafka_version jars from Maven Central into $libs"
  rm -rf "$libs"
  mkdir -p "$libs"
  mvn -B -q -Dstyle.color=never -f "$here/kafka/pom.xml" \
    org.apache.maven.plugins:maven-dependency-plugin:3.8.1:copy-dependencies \
    -DincludeScope=runtime -DoutputDirectory="$libs" 2>&1 | sed 's/\x1b\[[0-9;]*m//g' >&2 \
    || die "Maven could not resolve org.apache.kafka:kafka_2.13:$kafka_version (is Maven Central reachable?)"
  touch "$libs/.complete"
}

java_opts() {
  printf '%s\n' "-Xms$heap" "-Xmx$heap" -XX:+UseG1GC -XX:MaxGCPauseMillis=20 \
    -XX:InitiatingHeapOccupancyPercent=35 -XX:+ExplicitGCInvokesConcurrent -Djava.awt.headless=true \
    "-Dlog4j2.configurationFile=file:$here/kafka/log4j2.properties" "-Dkafka.logs.dir=$state/logs"
}

# The pid of the broker this script started, if it still runs. The command line is checked too:
# after a reboot (or on a copy of this machine) the pid in a stale file may belong to anything.
running_pid() {
  local pid
  [ -f "$pidfile" ] || return 0
  pid=$(cat "$pidfile")
  if kill -0 "$pid" 2>/dev/null && tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -qF "$state/server.properties"; then
    echo "$pid"
  fi
}

start() {
  if port_open 127.0.0.1 "$port"; then
    say "Kafka already answers on 127.0.0.1:$port; reusing it"
    return
  fi
  fetch_jars
  mkdir -p "$state/data" "$state/logs"
  sed -e "s|@PORT@|$port|g" -e "s|@CONTROLLER_PORT@|$controller_port|g" -e "s|@DATA_DIR@|$state/data|g" \
    "$here/kafka/server.properties.in" > "$state/server.properties"
  mapfile -t opts < <(java_opts)
  if [ ! -f "$state/data/meta.properties" ]; then
    cluster_id=$(python3 -c 'import base64,uuid;print(base64.urlsafe_b64encode(uuid.uuid4().bytes).rstrip(b"=").decode())')
    say "formatting Kafka storage in $state/data (cluster id $cluster_id)"
    java "${opts[@]}" -cp "$libs/*" kafka.tools.StorageTool format \
      --cluster-id="$cluster_id" -c "$state/server.properties" >"$state/logs/format.out" 2>&1 \
      || { cat "$state/logs/format.out" >&2; die "kafka-storage format failed"; }
  fi
  say "starting Kafka $kafka_version on 127.0.0.1:$port (log: $state/logs/broker.out)"
  local t0=$SECONDS
  nohup java "${opts[@]}" -cp "$libs/*" kafka.Kafka "$state/server.properties" \
    >"$state/logs/broker.out" 2>&1 </dev/null &
  echo $! >"$pidfile"
  if ! wait_port 127.0.0.1 "$port" 180 kafka "$(cat "$pidfile")"; then
    tail -n 40 "$state/logs/broker.out" >&2 || true
    die "Kafka did not start on 127.0.0.1:$port (see $state/logs/broker.out)"
  fi
  say "Kafka ready on 127.0.0.1:$port after $((SECONDS - t0))s"
}

stop() {
  local pid
  pid=$(running_pid)
  if [ -z "$pid" ]; then
    say "no Kafka started by this script is running on port $port"
    return
  fi
  say "stopping Kafka (pid $pid)"
  kill -TERM "$pid"
  for _ in $(seq 1 300); do
    kill -0 "$pid" 2>/dev/null || { rm -f "$pidfile"; say "Kafka stopped"; return; }
    sleep 0.1
  done
  say "Kafka did not stop within 30s; killing it"
  kill -KILL "$pid" 2>/dev/null || true
  rm -f "$pidfile"
}

case ${1:-} in
  start) start ;;
  fresh)
    if ! port_open 127.0.0.1 "$port"; then
      stop
      rm -rf "$state"
    fi
    start ;;
  stop) stop ;;
  status)
    if port_open 127.0.0.1 "$port"; then say "Kafka answers on 127.0.0.1:$port"; else say "Kafka is not running on 127.0.0.1:$port"; exit 1; fi ;;
  reset) stop; rm -rf "$state"; say "Kafka data removed ($state)" ;;
  *) die "usage: scripts/kafka.sh start|stop|status|reset" ;;
esac
