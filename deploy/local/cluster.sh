#!/usr/bin/env bash
# A whole voicemail cluster on one machine, on loopback: PostgreSQL, an S3
# gateway (versitygw over a folder), three `voicemail serve` instances and
# Kamailio in front. For trying the cluster and for the failover tests.
#
#   deploy/local/cluster.sh up       # start everything (builds bin/voicemail)
#   deploy/local/cluster.sh status   # what runs, and where
#   deploy/local/cluster.sh down     # stop everything (the state folder stays)
#   deploy/local/cluster.sh kill N   # kill -9 instance N (1-3), for failover
#   deploy/local/cluster.sh start N  # start instance N again
#
# Needs: Debian's postgresql and kamailio packages, versitygw
# (go install github.com/versity/versitygw/cmd/versitygw@v1.8.0).
# Ports: proxy 5060, instances 5061-5063 (SIP) and 8081-8083 (HTTP),
# PostgreSQL 55432, S3 7070. State: $VM_CLUSTER_DIR (default ./cluster).
set -euo pipefail
cd "$(dirname "$0")/../.."
ROOT=$PWD
DIR=${VM_CLUSTER_DIR:-$ROOT/cluster}
PGPORT=${VM_PGPORT:-55432}
S3PORT=${VM_S3PORT:-7070}
PROXY=${VM_PROXY_PORT:-5060}
S3KEY=voicemail
S3SECRET=voicemail-secret
BIN=$ROOT/bin/voicemail
PGBIN=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)

die() { echo "cluster: $*" >&2; exit 1; }
need() { command -v "$1" >/dev/null 2>&1 || [ -x "$1" ] || die "$1 not found: $2"; }

# PostgreSQL refuses to run as root: run it as the postgres user then.
as_pg() {
  if [ "$(id -u)" -eq 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

versitygw_bin() {
  command -v versitygw 2>/dev/null || echo "$(go env GOPATH)/bin/versitygw"
}

pidfile() { echo "$DIR/$1.pid"; }
alive() { [ -f "$(pidfile "$1")" ] && kill -0 "$(cat "$(pidfile "$1")")" 2>/dev/null; }

wait_port() { # host port what
  for _ in $(seq 100); do
    (exec 3<>"/dev/tcp/$1/$2") 2>/dev/null && return 0
    sleep 0.1
  done
  die "$3 did not start on $1:$2 (see $DIR/*.log)"
}

pg_up() {
  [ -n "$PGBIN" ] || die "PostgreSQL not found: apt-get install postgresql"
  if [ ! -d "$DIR/pg" ]; then
    mkdir -p "$DIR/pg"
    [ "$(id -u)" -eq 0 ] && chown postgres "$DIR/pg" "$DIR"
    as_pg "$PGBIN/initdb" -D "$DIR/pg" -U voicemail --auth=trust >"$DIR/pg-init.log"
  fi
  if ! as_pg "$PGBIN/pg_ctl" -D "$DIR/pg" status >/dev/null 2>&1; then
    as_pg "$PGBIN/pg_ctl" -D "$DIR/pg" -l "$DIR/postgres.log" -w \
      -o "-p $PGPORT -k $DIR -c listen_addresses=127.0.0.1" start >/dev/null
  fi
  as_pg "$PGBIN/psql" -h 127.0.0.1 -p "$PGPORT" -U voicemail -d postgres -tAc \
    "SELECT 1 FROM pg_database WHERE datname='voicemail'" | grep -q 1 ||
    as_pg "$PGBIN/createdb" -h 127.0.0.1 -p "$PGPORT" -U voicemail voicemail
}

s3_up() {
  local gw; gw=$(versitygw_bin)
  need "$gw" "go install github.com/versity/versitygw/cmd/versitygw@v1.8.0"
  mkdir -p "$DIR/s3/voicemail"
  alive s3 && return 0
  ROOT_ACCESS_KEY=$S3KEY ROOT_SECRET_KEY=$S3SECRET \
    "$gw" --port "127.0.0.1:$S3PORT" posix "$DIR/s3" >"$DIR/s3.log" 2>&1 &
  echo $! >"$(pidfile s3)"
  wait_port 127.0.0.1 "$S3PORT" versitygw
}

instance_up() { # N
  local n=$1
  alive "vm$n" && return 0
  mkdir -p "$DIR/vm$n"
  # One key of each kind for every instance: what one seals (GDPR audit,
  # webhook secrets), the others open.
  for key in gdpr_key webhook_key; do
    cp "$DIR/$key" "$DIR/vm$n/$key"
    chmod 600 "$DIR/vm$n/$key"
  done
  "$BIN" serve \
    --data-dir "$DIR/vm$n" \
    --db "postgres://voicemail@127.0.0.1:$PGPORT/voicemail?sslmode=disable" \
    --media "s3://voicemail/media?endpoint=http://127.0.0.1:$S3PORT&region=us-east-1&path_style=true" \
    --s3-access-key "$S3KEY" --s3-secret-key "$S3SECRET" \
    --sip-listen "udp:127.0.0.1:506$n,tcp:127.0.0.1:506$n" --sip-public-addr 127.0.0.1 \
    --sip-trusted-proxies 127.0.0.1 \
    --rtp-ports "$((20000 + n * 2000))-$((21998 + n * 2000))" \
    --http-listen "127.0.0.1:808$n" --auth-admin-token "$(cat "$DIR/admin_token")" \
    --demo --log-format text >"$DIR/vm$n.log" 2>&1 &
  echo $! >"$(pidfile "vm$n")"
  wait_port 127.0.0.1 "808$n" "voicemail instance $n"
}

proxy_up() {
  need kamailio "apt-get install kamailio"
  alive proxy && return 0
  cp "$ROOT/deploy/kamailio/kamailio.cfg" "$DIR/kamailio.cfg"
  cat >"$DIR/kamailio-local.cfg" <<CFG
listen=udp:127.0.0.1:$PROXY
listen=tcp:127.0.0.1:$PROXY
#!define DS_LIST "$DIR/dispatcher.list"
#!define CTL_SOCK "unix:$DIR/kamailio_ctl"
#!define TRUST_REDIRECTION
CFG
  : >"$DIR/dispatcher.list"
  for n in 1 2 3; do echo "1 sip:127.0.0.1:506$n 0 0" >>"$DIR/dispatcher.list"; done
  kamailio -DD -E -f "$DIR/kamailio.cfg" -Y "$DIR" -P "$DIR/kamailio-own.pid" >"$DIR/proxy.log" 2>&1 &
  echo $! >"$(pidfile proxy)"
  wait_port 127.0.0.1 "$PROXY" kamailio
}

up() {
  mkdir -p "$DIR"; chmod 755 "$DIR"
  [ -x "$BIN" ] || make -s build
  [ -f "$DIR/admin_token" ] || head -c 20 /dev/urandom | od -An -tx1 | tr -d ' \n' >"$DIR/admin_token"
  for key in gdpr_key webhook_key; do
    [ -f "$DIR/$key" ] || head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n' >"$DIR/$key"
  done
  chmod 600 "$DIR/admin_token" "$DIR/gdpr_key" "$DIR/webhook_key"
  pg_up
  s3_up
  for n in 1 2 3; do instance_up "$n"; done
  proxy_up
  status
  cat <<TXT

Leave a message through the proxy (from the repository root):
  sipp -sf testcalls/scenarios/leave_message.xml -s 1001 -m 1 -nostdin -i 127.0.0.1 -p 5070 -mp 16000 127.0.0.1:$PROXY
List it on any instance:
  curl -s -H "Authorization: Bearer \$(cat $DIR/admin_token)" http://127.0.0.1:8082/api/v1/mailboxes/1001/messages
TXT
}

status() {
  printf '%-8s %-7s %s\n' piece state where
  local st
  if [ -n "$PGBIN" ] && [ -d "$DIR/pg" ] && as_pg "$PGBIN/pg_ctl" -D "$DIR/pg" status >/dev/null 2>&1; then st=up; else st=down; fi
  printf '%-8s %-7s %s\n' postgres "$st" "127.0.0.1:$PGPORT"
  for p in s3 vm1 vm2 vm3 proxy; do
    if alive "$p"; then st=up; else st=down; fi
    case $p in
      s3) where="http://127.0.0.1:$S3PORT" ;;
      proxy) where="sip:127.0.0.1:$PROXY" ;;
      vm*) n=${p#vm}; where="sip:127.0.0.1:506$n http://127.0.0.1:808$n" ;;
    esac
    printf '%-8s %-7s %s\n' "$p" "$st" "$where"
  done
}

stop() { # name signal
  if alive "$1"; then kill "-$2" "$(cat "$(pidfile "$1")")" 2>/dev/null || true; fi
}

down() {
  for p in proxy vm1 vm2 vm3 s3; do stop "$p" TERM; done
  for _ in $(seq 100); do
    local any=0
    for p in proxy vm1 vm2 vm3 s3; do alive "$p" && any=1; done
    [ $any -eq 0 ] && break
    sleep 0.1
  done
  if [ -n "$PGBIN" ] && [ -d "$DIR/pg" ]; then
    as_pg "$PGBIN/pg_ctl" -D "$DIR/pg" -m fast stop >/dev/null 2>&1 || true
  fi
  rm -f "$DIR"/*.pid
}

case "${1:-}" in
  up) up ;;
  down) down ;;
  status) status ;;
  kill) stop "vm${2:?instance 1-3}" KILL ;;
  start) instance_up "${2:?instance 1-3}" ;;
  *) echo "usage: $0 up|down|status|kill N|start N" >&2; exit 2 ;;
esac
