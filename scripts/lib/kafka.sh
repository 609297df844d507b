# shellcheck shell=bash
# Single-node Apache Kafka (KRaft, broker and controller in one JVM) for the
# project's scripts and tests. Needs only Java 17+ and Maven: the jars come
# from Maven Central through scripts/kafka/pom.xml and are cached outside the
# checkout, so only the first run on a machine downloads anything.
#
#   kafka_fetch                    make sure the jars are cached
#   kafka_start DIR [PORT]         fresh broker in DIR, exports KAFKA_BOOTSTRAP
#                                  (PLAINTEXT) and, for the security modes MSK
#                                  offers, KAFKA_TLS_BOOTSTRAP (TLS),
#                                  KAFKA_SASL_BOOTSTRAP (SASL/SCRAM-SHA-512 over
#                                  TLS), KAFKA_CA_FILE (PEM the clients trust),
#                                  KAFKA_SCRAM_USERNAME, KAFKA_SCRAM_PASSWORD
#   kafka_stop DIR                 stop it; safe to repeat or when not running
#   kafka_restart DIR              stop it and start it again with its data
#   kafka_tool MAIN_CLASS ARGS...  run one of Kafka's CLI classes
#   kafka_topics / kafka_console_producer / kafka_console_consumer ARGS...
#
# A caller should always stop what it started, e.g.
#   dir=$(mktemp -d); trap 'kafka_stop "$dir"' EXIT; kafka_start "$dir"
#
# Environment:
#   PULSEBOARD_CACHE     cache root (default: $HOME/.cache/pulseboard)
#   KAFKA_VERSION        use exactly this version (default: the first of
#                        4.3.1, 4.1.2 that is cached or resolves)
#   KAFKA_START_TIMEOUT  seconds to wait for the broker to answer (60)
#   KAFKA_STOP_TIMEOUT   seconds between SIGTERM and SIGKILL (20)
#   KAFKA_BROKER_HEAP    broker heap flags (-Xms256m -Xmx512m)
#
# Sets KAFKA_LIBS (jar folder) and KAFKA_VERSION_IN_USE after kafka_fetch.
# Written to be sourced by scripts running under `set -euo pipefail`: every
# function reports failure through its return status instead of exiting.

_KAFKA_SH_DIR=$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")" && pwd)
_KAFKA_POM=$_KAFKA_SH_DIR/../kafka/pom.xml
# Tried in order; the second only if Maven cannot resolve the first.
_KAFKA_CANDIDATE_VERSIONS="4.3.1 4.1.2"

_kafka_log() { printf 'kafka: %s\n' "$*" >&2; }

_kafka_cache_root() {
  printf '%s/kafka\n' "${PULSEBOARD_CACHE:-${HOME:?HOME is not set}/.cache/pulseboard}"
}

_kafka_java() {
  # Same rule as Kafka's own launch scripts: JAVA_HOME wins when set.
  if [[ -n ${JAVA_HOME:-} && -x ${JAVA_HOME}/bin/java ]]; then
    printf '%s\n' "$JAVA_HOME/bin/java"
  else
    printf 'java\n'
  fi
}

# ---------------------------------------------------------------- fetching

kafka_fetch() {
  local root candidates v
  root=$(_kafka_cache_root) || return 1
  candidates=${KAFKA_VERSION:-$_KAFKA_CANDIDATE_VERSIONS}

  # Fast path: anything already complete in the cache means no Maven at all.
  for v in $candidates; do
    if [[ -f $root/$v/libs/.complete ]]; then
      _kafka_use "$root" "$v"
      return
    fi
  done

  if ! command -v mvn >/dev/null 2>&1; then
    _kafka_log "Maven (mvn) is needed once to fetch the Kafka jars; install it (apt-get install maven)"
    return 1
  fi
  for v in $candidates; do
    if _kafka_fetch_version "$root" "$v"; then
      _kafka_use "$root" "$v"
      return
    fi
  done
  _kafka_log "no Kafka version could be fetched (tried: $candidates)"
  return 1
}

_kafka_fetch_version() {
  local root=$1 v=$2 vdir log t0=$SECONDS rc=0
  vdir=$root/$v
  log=$vdir/fetch.log
  mkdir -p -- "$vdir" || return 1
  _kafka_log "fetching Kafka $v jars from Maven Central (first run only)…"

  # The lock keeps two first runs from filling the same Maven repository at
  # once; the download lands in a temporary folder that is renamed into place
  # only when complete, so an interrupted run is never mistaken for a good one.
  (
    if command -v flock >/dev/null 2>&1; then
      flock 9 || exit 1
    fi
    [[ -f $vdir/libs/.complete ]] && exit 0
    tmp=$(mktemp -d "$vdir/libs.tmp.XXXXXX") || exit 1
    if ! mvn -B -q -f "$_KAFKA_POM" \
        -Dmaven.repo.local="$root/m2" \
        -Dkafka.version="$v" \
        -Dkafka.build.dir="$tmp/build" \
        dependency:copy-dependencies \
        -DincludeScope=runtime \
        -DoutputDirectory="$tmp/libs" >"$log" 2>&1; then
      rm -rf -- "$tmp"
      exit 1
    fi
    if [[ ! -f $tmp/libs/kafka_2.13-$v.jar || ! -f $tmp/libs/kafka-tools-$v.jar ]]; then
      echo "expected Kafka $v jars missing after the Maven run" >>"$log"
      rm -rf -- "$tmp"
      exit 1
    fi
    touch "$tmp/libs/.complete" || exit 1
    rm -rf -- "$vdir/libs"
    mv -T -- "$tmp/libs" "$vdir/libs" || exit 1
    rm -rf -- "$tmp"
  ) 9>"$vdir/.lock" || rc=$?
  if (( rc != 0 )); then
    _kafka_log "fetching Kafka $v failed; end of $log:"
    tail -n 15 -- "$log" >&2 || true
    return 1
  fi
  _kafka_log "Kafka $v jars ready in $(( SECONDS - t0 ))s ($vdir/libs)"
}

_kafka_use() {
  local root=$1 v=$2
  KAFKA_VERSION_IN_USE=$v
  KAFKA_LIBS=$root/$v/libs
  export KAFKA_VERSION_IN_USE KAFKA_LIBS
  _kafka_write_log_configs "$root/$v/conf"
}

# Log4j 2 settings: the broker logs INFO to stdout (redirected to
# DIR/broker.log); tools log only warnings, to stderr, so their stdout stays
# clean for tests to read.
_kafka_write_log_configs() {
  local conf=$1 tmp
  [[ -f $conf/log4j2-broker.properties && -f $conf/log4j2-tools.properties ]] && return 0
  mkdir -p -- "$conf" || return 1
  tmp=$(mktemp "$conf/.broker.XXXXXX") || return 1
  cat >"$tmp" <<'EOF'
status = warn
appender.out.type = Console
appender.out.name = OUT
appender.out.layout.type = PatternLayout
appender.out.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = INFO
rootLogger.appenderRef.out.ref = OUT
logger.request.name = kafka.request.logger
logger.request.level = WARN
EOF
  mv -f -- "$tmp" "$conf/log4j2-broker.properties" || return 1
  tmp=$(mktemp "$conf/.tools.XXXXXX") || return 1
  cat >"$tmp" <<'EOF'
status = warn
appender.err.type = Console
appender.err.name = ERR
appender.err.target = SYSTEM_ERR
appender.err.layout.type = PatternLayout
appender.err.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = WARN
rootLogger.appenderRef.err.ref = ERR
EOF
  mv -f -- "$tmp" "$conf/log4j2-tools.properties"
}

# ------------------------------------------------------------------- tools

# Fills _KAFKA_CMD with the java command line for a CLI class, so callers can
# also run it under `timeout`.
_kafka_tool_cmd() {
  local java extra=()
  java=$(_kafka_java)
  if [[ -n ${KAFKA_TOOL_JAVA_OPTS:-} ]]; then
    read -r -a extra <<<"$KAFKA_TOOL_JAVA_OPTS"
  fi
  # Short-lived JVMs: the client compiler and serial GC start fastest.
  _KAFKA_CMD=("$java" -Xmx256m -XX:+UseSerialGC -XX:TieredStopAtLevel=1
    -Djava.awt.headless=true
    "-Dlog4j2.configurationFile=$KAFKA_LIBS/../conf/log4j2-tools.properties"
    ${extra[@]+"${extra[@]}"}
    -cp "$KAFKA_LIBS/*" "$@")
}

kafka_tool() {
  if (( $# < 1 )); then
    _kafka_log "usage: kafka_tool MAIN_CLASS [ARGS...]"
    return 2
  fi
  kafka_fetch || return 1
  _kafka_tool_cmd "$@"
  "${_KAFKA_CMD[@]}"
}

kafka_topics() { kafka_tool org.apache.kafka.tools.TopicCommand "$@"; }
kafka_console_producer() { kafka_tool org.apache.kafka.tools.ConsoleProducer "$@"; }
kafka_console_consumer() { kafka_tool org.apache.kafka.tools.consumer.ConsoleConsumer "$@"; }

# ----------------------------------------------------------- process helpers

# True if something on this machine uses TCP port $1 (any state, IPv4 or
# IPv6); with a state such as 0A (LISTEN) as $2, only sockets in that state.
_kafka_port_used() {
  local hex state=${2:-}
  [[ -n $state ]] || state='[0-9A-F]{2}'
  printf -v hex '%04X' "$1"
  if [[ -r /proc/net/tcp ]]; then
    grep -qsE "^ *[0-9]+: [0-9A-F]+:$hex [0-9A-F]+:[0-9A-F]+ $state " /proc/net/tcp /proc/net/tcp6
  else
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
  fi
}

# A random port below Linux's ephemeral range, so outgoing connections of
# other programs cannot take it between now and the broker's bind; none of
# the ports given, which are chosen for the same broker but not yet bound.
_kafka_free_port() {
  local p i
  for (( i = 0; i < 200; i++ )); do
    p=$(( 20000 + RANDOM % 12000 ))
    [[ " $* " == *" $p "* ]] && continue
    if ! _kafka_port_used "$p"; then
      printf '%s\n' "$p"
      return 0
    fi
  done
  _kafka_log "no free TCP port found"
  return 1
}

# kill -0 alone is fooled by a zombie that nobody has reaped yet.
_kafka_pid_alive() {
  local stat
  kill -0 "$1" 2>/dev/null || return 1
  if [[ -r /proc/$1/stat ]]; then
    stat=$(<"/proc/$1/stat") || return 1
    stat=${stat##*") "}
    [[ ${stat%% *} != Z ]]
  fi
}

# Guards against a stale pid file whose number now belongs to another process.
_kafka_is_broker_of() {
  local pid=$1 dir=$2 cmdline
  _kafka_pid_alive "$pid" || return 1
  [[ -r /proc/$pid/cmdline ]] || return 0
  cmdline=$(tr '\0' ' ' <"/proc/$pid/cmdline") || return 1
  [[ $cmdline == *kafka.Kafka*"$dir/server.properties"* ]]
}

_kafka_broker_pid() {
  local dir=$1 pid
  [[ -f $dir/broker.pid ]] || return 1
  pid=$(<"$dir/broker.pid") || return 1
  [[ $pid =~ ^[0-9]+$ ]] || return 1
  _kafka_is_broker_of "$pid" "$dir" || return 1
  printf '%s\n' "$pid"
}

# Kafka cluster ids are 16 random bytes in unpadded URL-safe base64; one
# starting with '-' would read as an option, so draw again.
_kafka_cluster_id() {
  local id
  while :; do
    id=$(head -c 16 /dev/urandom | base64 | tr '+/' '-_' | tr -d '=\n') || return 1
    [[ $id == -* ]] || break
  done
  printf '%s\n' "$id"
}

# ------------------------------------------------------------ start / stop

kafka_start() {
  if (( $# < 1 || $# > 2 )); then
    _kafka_log "usage: kafka_start DIR [PORT]"
    return 2
  fi
  local dir=$1 port=${2:-} cport tport sport cluster_id java pid t0
  local store_pass scram_user=pulseboard scram_pass
  mkdir -p -- "$dir" || return 1
  dir=$(cd -- "$dir" && pwd) || return 1

  if pid=$(_kafka_broker_pid "$dir"); then
    _kafka_log "a broker is already running in $dir (pid $pid); call kafka_stop first"
    return 1
  fi
  kafka_fetch || return 1
  java=$(_kafka_java)
  t0=$SECONDS

  if [[ -n $port ]]; then
    if [[ ! $port =~ ^[0-9]+$ ]] || (( port < 1 || port > 65535 )); then
      _kafka_log "invalid port: $port"
      return 1
    fi
    if _kafka_port_used "$port" 0A; then
      _kafka_log "port $port is already in use"
      return 1
    fi
  else
    port=$(_kafka_free_port) || return 1
  fi
  # Each is free but not yet taken, so each avoids those chosen before it.
  cport=$(_kafka_free_port "$port") || return 1
  tport=$(_kafka_free_port "$port" "$cport") || return 1
  sport=$(_kafka_free_port "$port" "$cport" "$tport") || return 1

  # Every start is a fresh cluster: old data would carry the old cluster id.
  rm -rf -- "$dir/data" "$dir/broker.pid" "$dir/bootstrap" "$dir/tls"
  store_pass=$(head -c 18 /dev/urandom | base64 | tr -d '/+=\n') || return 1
  scram_pass=$(head -c 18 /dev/urandom | base64 | tr -d '/+=\n') || return 1
  _kafka_make_certificate "$dir/tls" "$store_pass" || return 1
  cat >"$dir/server.properties" <<EOF || return 1
process.roles=broker,controller
node.id=1
controller.quorum.bootstrap.servers=127.0.0.1:$cport
listeners=PLAINTEXT://127.0.0.1:$port,CONTROLLER://127.0.0.1:$cport,SSL://127.0.0.1:$tport,SASL_SSL://127.0.0.1:$sport
advertised.listeners=PLAINTEXT://127.0.0.1:$port,CONTROLLER://127.0.0.1:$cport,SSL://127.0.0.1:$tport,SASL_SSL://127.0.0.1:$sport
inter.broker.listener.name=PLAINTEXT
controller.listener.names=CONTROLLER
listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT,SSL:SSL,SASL_SSL:SASL_SSL
# TLS with a certificate made for this start; SCRAM users are stored in the metadata log.
ssl.keystore.type=PKCS12
ssl.keystore.location=$dir/tls/broker.p12
ssl.keystore.password=$store_pass
ssl.key.password=$store_pass
sasl.enabled.mechanisms=SCRAM-SHA-512
listener.name.sasl_ssl.scram-sha-512.sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required;
log.dirs=$dir/data
num.partitions=3
auto.create.topics.enable=true
# One node: every internal topic must live with a single replica.
offsets.topic.replication.factor=1
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
# Small internal topic and no join delay keep consumer start-up quick in tests.
offsets.topic.num.partitions=3
group.initial.rebalance.delay.ms=0
EOF
  # Bounded client timeouts for the readiness probe.
  cat >"$dir/admin.properties" <<'EOF' || return 1
request.timeout.ms=5000
default.api.timeout.ms=10000
EOF

  cluster_id=$(_kafka_cluster_id) || return 1
  if ! "$java" -Xmx256m -XX:+UseSerialGC -XX:TieredStopAtLevel=1 \
      "-Dlog4j2.configurationFile=$KAFKA_LIBS/../conf/log4j2-tools.properties" \
      -cp "$KAFKA_LIBS/*" kafka.tools.StorageTool format \
      --config "$dir/server.properties" --cluster-id "$cluster_id" --standalone \
      --add-scram "SCRAM-SHA-512=[name=\"$scram_user\",password=\"$scram_pass\"]" \
      >"$dir/format.log" 2>&1; then
    _kafka_log "formatting storage in $dir failed:"
    tail -n 20 -- "$dir/format.log" >&2 || true
    return 1
  fi

  : >"$dir/broker.log"
  _kafka_launch "$dir" "$port" || return 1
  pid=$(<"$dir/broker.pid")

  KAFKA_BOOTSTRAP=127.0.0.1:$port
  KAFKA_TLS_BOOTSTRAP=127.0.0.1:$tport
  KAFKA_SASL_BOOTSTRAP=127.0.0.1:$sport
  KAFKA_CA_FILE=$dir/tls/ca.pem
  KAFKA_SCRAM_USERNAME=$scram_user
  KAFKA_SCRAM_PASSWORD=$scram_pass
  export KAFKA_BOOTSTRAP KAFKA_TLS_BOOTSTRAP KAFKA_SASL_BOOTSTRAP KAFKA_CA_FILE \
    KAFKA_SCRAM_USERNAME KAFKA_SCRAM_PASSWORD
  # The same, for a shell that did not start the broker: `source DIR/client.env`.
  (umask 077 && declare -p KAFKA_BOOTSTRAP KAFKA_TLS_BOOTSTRAP KAFKA_SASL_BOOTSTRAP \
    KAFKA_CA_FILE KAFKA_SCRAM_USERNAME KAFKA_SCRAM_PASSWORD >"$dir/client.env") || return 1
  printf '%s\n' "$KAFKA_BOOTSTRAP" >"$dir/bootstrap"
  _kafka_log "Kafka $KAFKA_VERSION_IN_USE ready at $KAFKA_BOOTSTRAP in $(( SECONDS - t0 ))s (pid $pid, log $dir/broker.log)"
}

# Launches the broker configured in DIR (its server.properties and data) and
# waits until it serves metadata on PORT.
_kafka_launch() {
  local dir=$1 port=$2 java pid deadline heap=()
  java=$(_kafka_java)
  read -r -a heap <<<"${KAFKA_BROKER_HEAP:--Xms256m -Xmx512m}"
  _kafka_log "starting Kafka $KAFKA_VERSION_IN_USE on 127.0.0.1:$port (data in $dir)…"
  # Started from a subshell so the broker is not a job of the caller's shell
  # (no "Terminated" notices, nothing left for the caller to reap).
  (
    cd -- "$dir" || exit 1
    "$java" "${heap[@]}" -XX:+UseG1GC -XX:MaxGCPauseMillis=20 \
      -Djava.awt.headless=true \
      "-Dlog4j2.configurationFile=$KAFKA_LIBS/../conf/log4j2-broker.properties" \
      -cp "$KAFKA_LIBS/*" kafka.Kafka "$dir/server.properties" \
      </dev/null >>"$dir/broker.log" 2>&1 &
    printf '%s\n' "$!" >"$dir/broker.pid"
  ) || { _kafka_start_failed "$dir" "could not launch java"; return 1; }
  pid=$(<"$dir/broker.pid")

  # Wait for the listener cheaply, then prove the broker serves metadata with
  # a real client: the topics tool's --list.
  deadline=$(( SECONDS + ${KAFKA_START_TIMEOUT:-60} ))
  _kafka_tool_cmd org.apache.kafka.tools.TopicCommand \
    --bootstrap-server "127.0.0.1:$port" --command-config "$dir/admin.properties" --list
  while :; do
    if ! _kafka_pid_alive "$pid"; then
      _kafka_start_failed "$dir" "the broker exited during start-up"
      return 1
    fi
    if (( SECONDS >= deadline )); then
      _kafka_start_failed "$dir" "the broker did not answer within ${KAFKA_START_TIMEOUT:-60}s"
      return 1
    fi
    if _kafka_port_used "$port" 0A &&
        timeout -k 5 30 "${_KAFKA_CMD[@]}" >/dev/null 2>"$dir/ready-check.log"; then
      break
    fi
    sleep 0.5
  done
}

# Stops the broker in DIR (if it runs) and starts it again on its port with
# the data it had, as an operator's restart does.
kafka_restart() {
  if (( $# != 1 )); then
    _kafka_log "usage: kafka_restart DIR"
    return 2
  fi
  local dir=$1 port
  if [[ ! -s $dir/bootstrap ]]; then
    _kafka_log "no broker was started in $dir"
    return 1
  fi
  port=$(<"$dir/bootstrap")
  port=${port##*:}
  kafka_stop "$dir" || return 1
  kafka_fetch || return 1
  _kafka_launch "$dir" "$port" || return 1
  printf '%s\n' "127.0.0.1:$port" >"$dir/bootstrap"
  _kafka_log "Kafka restarted at 127.0.0.1:$port"
}

# A self-signed certificate for 127.0.0.1 in DIR/broker.p12, and the same
# certificate as PEM in DIR/ca.pem for the clients to trust.
_kafka_make_certificate() {
  local dir=$1 pass=$2 keytool
  keytool=$(dirname -- "$(readlink -f -- "$(command -v "$(_kafka_java)")")")/keytool
  mkdir -p -- "$dir" || return 1
  if ! "$keytool" -genkeypair -alias broker -keyalg RSA -keysize 2048 -validity 30 \
      -dname CN=127.0.0.1 -ext SAN=ip:127.0.0.1,dns:localhost -ext BC=ca:true \
      -storetype PKCS12 -keystore "$dir/broker.p12" -storepass "$pass" -keypass "$pass" \
      >"$dir/keytool.log" 2>&1 ||
    ! "$keytool" -exportcert -rfc -alias broker -keystore "$dir/broker.p12" \
      -storepass "$pass" -file "$dir/ca.pem" >>"$dir/keytool.log" 2>&1; then
    _kafka_log "making the broker's TLS certificate failed:"
    tail -n 10 -- "$dir/keytool.log" >&2 || true
    return 1
  fi
}

_kafka_start_failed() {
  local dir=$1
  _kafka_log "$2; last lines of $dir/broker.log:"
  tail -n 40 -- "$dir/broker.log" >&2 2>/dev/null || true
  if [[ -s $dir/ready-check.log ]]; then
    _kafka_log "last readiness probe said:"
    tail -n 10 -- "$dir/ready-check.log" >&2 || true
  fi
  kafka_stop "$dir"
}

kafka_stop() {
  if (( $# != 1 )); then
    _kafka_log "usage: kafka_stop DIR"
    return 2
  fi
  local dir=$1 pid i limit
  [[ -d $dir ]] || return 0
  dir=$(cd -- "$dir" && pwd) || return 0
  if pid=$(_kafka_broker_pid "$dir"); then
    limit=$(( ${KAFKA_STOP_TIMEOUT:-20} * 5 ))
    _kafka_log "stopping Kafka broker (pid $pid)…"
    kill -TERM "$pid" 2>/dev/null || true
    for (( i = 0; i < limit; i++ )); do
      _kafka_pid_alive "$pid" || break
      sleep 0.2
    done
    if _kafka_pid_alive "$pid"; then
      _kafka_log "broker still running after ${KAFKA_STOP_TIMEOUT:-20}s; sending SIGKILL"
      kill -KILL "$pid" 2>/dev/null || true
      for (( i = 0; i < 25; i++ )); do
        _kafka_pid_alive "$pid" || break
        sleep 0.2
      done
    fi
  fi
  rm -f -- "$dir/broker.pid"
  return 0
}
