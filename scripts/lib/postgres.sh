# shellcheck shell=bash
# Throwaway or project-local PostgreSQL 15 clusters for scripts and tests.
#
#   . scripts/lib/postgres.sh
#   pg_ensure_installed            # apt-get installs postgresql-15 if missing
#   pg_start DIR [PORT]            # exports DATABASE_URL, PULSEBOARD_PG_PORT
#   pg_stop DIR
#
# DIR holds data/ (the cluster), postgres.log, port (the last port used) and
# the Unix socket, so nothing is written to /var/run.
#
# The cluster trusts every connection over its socket and 127.0.0.1: any
# local user can connect as superuser. That is the point of a dev/test
# cluster; never point this at a shared host.
#
# Functions report on stderr and fail through return codes rather than
# errexit: bash ignores `set -e` inside a function called as
# `pg_start ... || ...`, so every step checks its own result.

if [[ ${BASH_SOURCE[0]} == "$0" ]]; then
    echo "postgres.sh is a library: source it, then call pg_start DIR [PORT]" >&2
    exit 2
fi

_PG_MAJOR=15
_PG_DB=pulseboard

_pg_say() { printf 'postgres: %s\n' "$*" >&2; }
_pg_fail() {
    printf 'postgres: error: %s\n' "$*" >&2
    return 1
}

# True if $1 is a TCP port number.
_pg_is_port() {
    [[ $1 =~ ^[1-9][0-9]{0,4}$ ]] && (($1 <= 65535))
}

# True if the initdb and pg_ctl in directory $1 are both PostgreSQL 15.
_pg_dir_is_v15() {
    local d=$1 tool v
    for tool in initdb pg_ctl; do
        [[ -x $d/$tool ]] || return 1
        v=$("$d/$tool" --version 2>/dev/null) || return 1
        [[ $v =~ \(PostgreSQL\)\ ${_PG_MAJOR}([^0-9]|$) ]] || return 1
    done
}

# Prints the bin directory of a PostgreSQL 15 install. Symlinks on PATH are
# followed so the rest of the install (postgres, pg_isready, psql) is found
# next to initdb.
_pg_bindir() {
    local -a dirs=()
    local tool path d
    for tool in initdb pg_ctl; do
        if path=$(command -v "$tool" 2>/dev/null) && path=$(readlink -f -- "$path"); then
            dirs+=("$(dirname -- "$path")")
        fi
    done
    dirs+=("/usr/lib/postgresql/${_PG_MAJOR}/bin")
    for d in "${dirs[@]}"; do
        if _pg_dir_is_v15 "$d"; then
            printf '%s\n' "$d"
            return 0
        fi
    done
    return 1
}

# Prints the path of client tool $2, preferring the one in bin directory $1.
_pg_tool() {
    if [[ -x $1/$2 ]]; then
        printf '%s\n' "$1/$2"
    elif command -v "$2" 2>/dev/null; then
        :
    else
        _pg_fail "$2 not found next to $1/initdb nor on PATH"
    fi
}

# initdb, pg_ctl and postgres refuse to run as root, so root hands them to the
# postgres OS user; anyone else runs them as themselves. `cd /` spares them a
# working directory they cannot read (e.g. /root).
_pg_as() {
    if ((EUID == 0)); then
        (cd / && runuser -u postgres -- "$@")
    else
        "$@"
    fi
}

pg_ensure_installed() {
    if _pg_bindir >/dev/null; then
        return 0
    fi
    _pg_say "PostgreSQL ${_PG_MAJOR} (initdb, pg_ctl) not found on PATH nor in /usr/lib/postgresql/${_PG_MAJOR}/bin;" \
        "installing postgresql-${_PG_MAJOR} with apt-get"
    local -a sudo=()
    if ((EUID != 0)); then
        if command -v sudo >/dev/null 2>&1; then
            sudo=(sudo -n)
        else
            _pg_fail "installing postgresql-${_PG_MAJOR} needs root (or sudo)"
            return 1
        fi
    fi
    if ! command -v apt-get >/dev/null 2>&1; then
        _pg_fail "apt-get not found: install PostgreSQL ${_PG_MAJOR} another way and put its bin directory on PATH"
        return 1
    fi
    # apt-get chatter goes to stderr so callers capturing stdout stay clean.
    if ! "${sudo[@]}" apt-get update >&2; then
        _pg_fail "apt-get update failed"
        return 1
    fi
    if ! "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive \
        apt-get install -y --no-install-recommends "postgresql-${_PG_MAJOR}" >&2; then
        _pg_fail "apt-get install postgresql-${_PG_MAJOR} failed"
        return 1
    fi
    if ! _pg_bindir >/dev/null; then
        _pg_fail "postgresql-${_PG_MAJOR} is installed but its initdb/pg_ctl were not found"
        return 1
    fi
    _pg_say "installed postgresql-${_PG_MAJOR}"
}

# Root runs the server as postgres, which must be able to walk down to DIR
# (DIR itself is handed to postgres): initdb's bare "Permission denied"
# under e.g. /root says nothing useful.
_pg_check_reachable() {
    local dir=$1 p blocked
    local -a chain=()
    p=$(dirname -- "$dir")
    while [[ $p != / ]]; do
        chain=("$p" "${chain[@]}")
        p=$(dirname -- "$p")
    done
    chain=(/ "${chain[@]}")
    # shellcheck disable=SC2016
    blocked=$(cd / && runuser -u postgres -- sh -c \
        'for p; do [ -e "$p" ] || exit 0; [ -x "$p" ] || { echo "$p"; exit 0; }; done' \
        sh "${chain[@]}") || {
        _pg_fail "could not run a check as the postgres user (runuser failed)"
        return 1
    }
    if [[ -n $blocked ]]; then
        _pg_fail "the postgres OS user cannot enter $blocked ($(stat -c '%A %U:%G' -- "$blocked")," \
            "needed to reach $dir); use a directory it can reach (e.g. under /tmp) or allow it in (chmod o+x)"
        return 1
    fi
}

# Refuses a DIR that already holds something other than our own layout, so
# a typo such as `pg_start /tmp` never chowns or fills a shared folder.
_pg_check_dir() {
    local dir=$1 stray
    if [[ -e $dir && ! -d $dir ]]; then
        _pg_fail "$dir exists and is not a directory"
        return 1
    fi
    [[ -d $dir ]] || return 0
    [[ -f $dir/data/PG_VERSION ]] && return 0
    stray=$(find "$dir" -mindepth 1 -maxdepth 1 ! -name data ! -name postgres.log \
        ! -name port ! -name '.s.PGSQL.*' -print -quit 2>/dev/null) || stray=$dir
    if [[ -z $stray && -d $dir/data ]]; then
        stray=$(find "$dir/data" -mindepth 1 -maxdepth 1 -print -quit 2>/dev/null) || stray=$dir/data
    fi
    if [[ -n $stray ]]; then
        _pg_fail "$dir holds no cluster but is not empty (found $stray); pick an empty or new directory"
        return 1
    fi
}

# Prints a port nobody on this machine is bound to: the one DIR used last
# if still free, else a random one below the usual ephemeral range. A race
# with another process is still possible; pg_start retries on bind errors.
_pg_pick_port() {
    local dir=$1 used=' ' f addr port i
    for f in /proc/net/tcp /proc/net/tcp6; do
        [[ -r $f ]] || continue
        while read -r _ addr _; do
            [[ $addr == *:* ]] || continue
            used+="$((16#${addr##*:})) "
        done <"$f"
    done
    if [[ -r $dir/port ]] && read -r port <"$dir/port" && _pg_is_port "$port" &&
        [[ $used != *" $port "* ]]; then
        printf '%s\n' "$port"
        return 0
    fi
    for ((i = 0; i < 100; i++)); do
        port=$((20000 + RANDOM % 12000))
        if [[ $used != *" $port "* ]]; then
            printf '%s\n' "$port"
            return 0
        fi
    done
    _pg_fail "found no free TCP port"
}

# Creates the cluster in DIR/data, reachable only over DIR's socket and
# 127.0.0.1, both with trust auth.
_pg_init() {
    local dir=$1 bindir=$2 data=$1/data
    _pg_say "creating a PostgreSQL ${_PG_MAJOR} cluster in $data"
    if ((EUID == 0)) && ! chown postgres: "$dir"; then
        _pg_fail "could not hand $dir to the postgres user"
        return 1
    fi
    # C collation: identical sorting on every machine, whatever its locales.
    if ! _pg_as "$bindir/initdb" -D "$data" -U postgres -E UTF8 --locale=C \
        --auth=trust --no-instructions >&2; then
        _pg_fail "initdb failed for $data"
        return 1
    fi
    # Written through the server's user so the files keep its ownership.
    if ! printf '%s\n' \
        '# Dev/test cluster: trust, and only from this machine.' \
        '# TYPE  DATABASE  USER  ADDRESS       METHOD' \
        'local   all       all                 trust' \
        'host    all       all   127.0.0.1/32  trust' |
        _pg_as tee "$data/pg_hba.conf" >/dev/null; then
        _pg_fail "could not write $data/pg_hba.conf"
        return 1
    fi
    if ! printf '%s\n' \
        '' \
        '# Dev/test cluster settings (scripts/lib/postgres.sh). The port is given' \
        '# on the command line at each start.' \
        "listen_addresses = '127.0.0.1'" \
        "unix_socket_directories = '$dir'" \
        'max_connections = 200' \
        "timezone = 'UTC'" \
        "log_timezone = 'UTC'" |
        _pg_as tee -a "$data/postgresql.conf" >/dev/null; then
        _pg_fail "could not write $data/postgresql.conf"
        return 1
    fi
}

# pg_ctl status as the server's user: 0 running, 3 not running, anything
# else means the data directory could not be read.
_pg_status() {
    local rc=0
    _pg_as "$1" -D "$2" status >/dev/null 2>&1 || rc=$?
    return "$rc"
}

# Waits for DIR's server to answer on 127.0.0.1:PORT, creates the app's
# database if missing and exports the connection settings.
_pg_ready() {
    local dir=$1 bindir=$2 port=$3 isready psql i exists
    isready=$(_pg_tool "$bindir" pg_isready) || return 1
    psql=$(_pg_tool "$bindir" psql) || return 1
    for ((i = 0; i < 120; i++)); do
        if "$isready" -q -h 127.0.0.1 -p "$port" -U postgres -d postgres; then
            break
        fi
        sleep 0.5
    done
    if ((i == 120)); then
        _pg_fail "server in $dir did not accept connections on 127.0.0.1:$port within 60s (log: $dir/postgres.log)"
        return 1
    fi
    local -a sql=("$psql" -X -q -A -t -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$port" -U postgres -d postgres)
    exists=$("${sql[@]}" -c "SELECT 1 FROM pg_database WHERE datname = '${_PG_DB}'") || {
        _pg_fail "could not query the server in $dir"
        return 1
    }
    if [[ $exists != 1 ]]; then
        _pg_say "creating database ${_PG_DB}"
        # A concurrent pg_start may win the race; only a still-missing database is an error.
        if ! "${sql[@]}" -c "CREATE DATABASE ${_PG_DB}" &&
            [[ $("${sql[@]}" -c "SELECT 1 FROM pg_database WHERE datname = '${_PG_DB}'") != 1 ]]; then
            _pg_fail "could not create database ${_PG_DB}"
            return 1
        fi
    fi
    export PULSEBOARD_PG_PORT=$port
    export DATABASE_URL="postgres://postgres@127.0.0.1:${port}/${_PG_DB}"
    _pg_say "ready: DATABASE_URL=$DATABASE_URL"
}

# pg_start DIR [PORT]
pg_start() {
    local dir=${1:-} want_port=${2:-}
    if [[ -z $dir || $# -gt 2 ]]; then
        _pg_fail "usage: pg_start DIR [PORT]"
        return 1
    fi
    if [[ -n $want_port ]] && ! _pg_is_port "$want_port"; then
        _pg_fail "pg_start: '$want_port' is not a port number"
        return 1
    fi
    dir=$(realpath -m -- "$dir") || {
        _pg_fail "pg_start: cannot resolve $1"
        return 1
    }
    if [[ $dir == / ]]; then
        _pg_fail "pg_start: refusing to use /"
        return 1
    fi
    # The path goes verbatim into postgresql.conf's socket directory list.
    if [[ $dir == *[[:space:]\'\"\\,]* ]]; then
        _pg_fail "pg_start: $dir contains a space, quote, backslash or comma; pick a plainer path"
        return 1
    fi
    # Unix socket paths are limited to 107 bytes; the socket is DIR/.s.PGSQL.<port>.
    if ((${#dir} + 15 > 107)); then
        _pg_fail "pg_start: $dir is too long for a Unix socket path; use a shorter one (e.g. under /tmp)"
        return 1
    fi
    if ((EUID == 0)) && ! id -u postgres >/dev/null 2>&1; then
        _pg_fail "pg_start: no 'postgres' OS user to run the server as (installing postgresql-${_PG_MAJOR} creates it)"
        return 1
    fi

    pg_ensure_installed || return 1
    local bindir
    bindir=$(_pg_bindir) || {
        _pg_fail "PostgreSQL ${_PG_MAJOR} not found"
        return 1
    }
    _pg_check_dir "$dir" || return 1
    local created=
    [[ -d $dir ]] || created=1
    mkdir -p -- "$dir" || {
        _pg_fail "could not create $dir"
        return 1
    }
    # Checked after mkdir: folders it made under a umask of 077 count too.
    if ((EUID == 0)) && ! _pg_check_reachable "$dir"; then
        [[ -z $created ]] || rmdir -- "$dir" 2>/dev/null || true
        return 1
    fi

    local data=$dir/data version
    if [[ -f $data/PG_VERSION ]]; then
        read -r version <"$data/PG_VERSION" || version=unknown
        if [[ $version != "$_PG_MAJOR" ]]; then
            _pg_fail "$data holds a PostgreSQL $version cluster, not ${_PG_MAJOR}"
            return 1
        fi
    else
        _pg_init "$dir" "$bindir" || return 1
    fi

    local pg_ctl=$bindir/pg_ctl port status=0
    _pg_status "$pg_ctl" "$data" || status=$?
    if ((status != 0 && status != 3)); then
        _pg_fail "pg_ctl status failed for $data (exit $status); check its ownership and permissions"
        return 1
    fi
    if ((status == 0)); then
        port=$(sed -n 4p "$data/postmaster.pid" 2>/dev/null) || port=
        if ! _pg_is_port "$port"; then
            _pg_fail "a server is running in $data but its postmaster.pid has no port"
            return 1
        fi
        if [[ -n $want_port && $want_port != "$port" ]]; then
            _pg_say "asked for port $want_port, but the server in $dir already runs on $port; using $port"
        fi
        _pg_say "reusing the server already running in $dir on 127.0.0.1:$port"
        # Not ours to stop if it turns out unusable.
        _pg_ready "$dir" "$bindir" "$port"
        return
    fi

    local log=$dir/postgres.log attempt offset
    for ((attempt = 1; ; attempt++)); do
        if [[ -n $want_port ]]; then
            port=$want_port
        else
            port=$(_pg_pick_port "$dir") || return 1
        fi
        offset=$(($(stat -c %s -- "$log" 2>/dev/null || echo 0) + 1))
        _pg_say "starting PostgreSQL in $dir on 127.0.0.1:$port (log: $log)"
        if _pg_as "$pg_ctl" -D "$data" -l "$log" -o "-p $port" -w -t 60 start >&2; then
            break
        fi
        # -w gave up: make sure no half-started server outlives this call.
        _pg_as "$pg_ctl" -D "$data" -m immediate -w -t 30 stop >/dev/null 2>&1 || true
        # Process substitution, not a pipe: under pipefail grep -q's early exit
        # would fail the pipeline.
        if [[ -z $want_port ]] && ((attempt < 5)) &&
            grep -q 'could not bind\|Address already in use' < <(tail -c "+$offset" -- "$log" 2>/dev/null); then
            _pg_say "port $port was taken meanwhile; trying another"
            continue
        fi
        _pg_fail "PostgreSQL did not start in $dir; end of $log:"
        tail -n 20 -- "$log" >&2 2>/dev/null || true
        return 1
    done
    printf '%s\n' "$port" >"$dir/port" 2>/dev/null || true

    if ! _pg_ready "$dir" "$bindir" "$port"; then
        _pg_say "stopping the server started above"
        _pg_as "$pg_ctl" -D "$data" -m immediate -w -t 30 stop >/dev/null 2>&1 || true
        return 1
    fi
}

# pg_stop DIR: fast shutdown; a no-op when nothing runs there.
pg_stop() {
    local dir=${1:-}
    if [[ -z $dir || $# -gt 1 ]]; then
        _pg_fail "usage: pg_stop DIR"
        return 1
    fi
    dir=$(realpath -m -- "$dir") || {
        _pg_fail "pg_stop: cannot resolve $1"
        return 1
    }
    local data=$dir/data bindir
    if [[ ! -f $data/PG_VERSION ]]; then
        _pg_say "no cluster in $dir; nothing to stop"
        return 0
    fi
    bindir=$(_pg_bindir) || {
        _pg_fail "PostgreSQL ${_PG_MAJOR} not found; cannot stop the server in $dir"
        return 1
    }
    local pg_ctl=$bindir/pg_ctl status=0
    _pg_status "$pg_ctl" "$data" || status=$?
    if ((status == 3)); then
        _pg_say "server in $dir is not running"
        return 0
    elif ((status != 0)); then
        _pg_fail "pg_ctl status failed for $data (exit $status); check its ownership and permissions"
        return 1
    fi
    _pg_say "stopping the server in $dir"
    if _pg_as "$pg_ctl" -D "$data" -m fast -w -t 60 stop >&2; then
        return 0
    fi
    # Someone else may have stopped it meanwhile.
    status=0
    _pg_status "$pg_ctl" "$data" || status=$?
    if ((status == 3)); then
        return 0
    fi
    _pg_say "fast shutdown did not finish in 60s; forcing an immediate one"
    if ! _pg_as "$pg_ctl" -D "$data" -m immediate -w -t 30 stop >&2; then
        _pg_fail "could not stop the server in $dir"
        return 1
    fi
}
