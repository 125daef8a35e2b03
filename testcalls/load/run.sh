#!/usr/bin/env bash
# Load runs of the voicemail server, the method of issue 8: the server
# pinned to one core (taskset -c $SERVER_CPU), the load generator to the
# other ($GEN_CPU), a fresh server and data folder per level, 20 s of audio
# per call after the real greeting and beep, CPU and RSS from /proc,
# recordings checked from the WAV headers. One JSON line per level goes to
# $OUT/results.jsonl; the Markdown table to $OUT/table.md.
#
#   testcalls/load/run.sh                 # deposit, plain, setup, sipp (≈ 20 min)
#   testcalls/load/run.sh deposit 100 600 # one suite, chosen levels
#   SMOKE=1 testcalls/load/run.sh         # tiny levels, a minute (checks the harness)
#   VOICEMAIL_BIN=path testcalls/load/run.sh  # a prebuilt server instead of go build
#   testcalls/load/run.sh crosscheck 100 200 400  # churn mix: vmload, then sipp, per level
#   PERF_SECONDS=29 testcalls/load/run.sh churn 400  # + perf record of the server ($OUT/perf-churn-400.data)
#   PERF_DELAY=26 PERF_SECONDS=8 testcalls/load/run.sh plainchurn 3000  # the same from 26 s on (the replacement wave)
#   CHURN_SECONDS=120 testcalls/load/run.sh churn 200  # arrivals for 120 s instead of 20 (N/10 × 120 calls)
#   SERVER_FLAGS="--db sqlite:///tmp/big/voicemail.db --retention-days 30" …  # a seeded database, the sweep on
#   SERVER_ENV="GOGC=50" testcalls/load/run.sh churn 2000  # the server's environment only (Go runtime settings)
#
# Suites: churn (vmload, the churn mix of issue 18: N held, N/10 per
# second, 2N calls, default log level), plainchurn (the same mix against
# silent prompts: beep and record at once), sippchurn (the same mix from sipp),
# crosscheck (churn and sippchurn at each level, one after the other;
# per-call RTP ports only: sipp's rtp_stream sends every call's audio from
# one socket without a=ssrc, which the shared port, media.rtp_mux, drops
# by design, so sipp's messages there are empty and its CPU meaningless),
# deposit (vmload, one wave: greeting + beep + 20 s), plain (vmload, silent
# prompts: beep + 20 s), setup (vmload, 1 s calls at N calls/s, no audio),
# sipp (sipp 3.6 rtp_stream deposit, to cross-check vmload), dtmf (deposit
# with every 5th call pressing # during the greeting: DTMF-to-prompt).
# Loopback only. Needs taskset (util-linux) and, for the sipp suite, sipp.
set -euo pipefail

cd "$(dirname "$0")/../.."
ROOT=$(pwd)
OUT=${OUT:-$ROOT/testcalls/load/out}
WORK=${WORK:-/tmp/vmload-work}
SERVER_CPU=${SERVER_CPU:-1}
GEN_CPU=${GEN_CPU:-0}
SIP_PORT=${SIP_PORT:-6060}
HTTP_PORT=${HTTP_PORT:-6080}
SIPP_PORT=${SIPP_PORT:-6070}
SIPP_MEDIA_PORT=${SIPP_MEDIA_PORT:-30000}
RTP_PORTS=${RTP_PORTS:-40000-59999}
SECONDS_AUDIO=${SECONDS_AUDIO:-20}
RAMP=${RAMP:-50}          # new calls per second while ramping to a level
MAX_CALLS=${MAX_CALLS:-5000}
SERVER_FLAGS=${SERVER_FLAGS:-}
VMLOAD_FLAGS=${VMLOAD_FLAGS:-}
# Where the server's recordings land as files, when not in its data folder
# (e.g. the folder of the versitygw bucket with SERVER_FLAGS="--media s3://…").
MEDIA_DIR=${MEDIA_DIR:-}
# The one-wave suites ran the server at warn; the churn suites run it at
# its default level (info) unless LOG_LEVEL says otherwise.
LOG_FLAG="--log-level ${LOG_LEVEL:-warn}"
METRICS_URL=http://127.0.0.1:$HTTP_PORT/metrics

mkdir -p "$OUT" "$WORK"
BIN=$WORK/bin
mkdir -p "$BIN"
if [ -n "${VOICEMAIL_BIN:-}" ]; then cp "$VOICEMAIL_BIN" "$BIN/voicemail"; else go build -o "$BIN/voicemail" ./cmd/voicemail; fi
go build -o "$BIN/vmload" ./cmd/vmload
"$BIN/vmload" mkaudio -seconds "$SECONDS_AUDIO" -out "$WORK/speech.ulaw"
rm -rf "$WORK/silent-prompts"
"$BIN/vmload" mkprompts -out "$WORK/silent-prompts"

SERVER_PID=
stop_server() {
	[ -n "$SERVER_PID" ] || return 0
	kill -TERM "$SERVER_PID" 2>/dev/null || true
	for _ in $(seq 1 150); do
		kill -0 "$SERVER_PID" 2>/dev/null || break
		sleep 0.2
	done
	kill -KILL "$SERVER_PID" 2>/dev/null || true
	wait "$SERVER_PID" 2>/dev/null || true
	SERVER_PID=
}
trap stop_server EXIT

# start_server NAME [extra serve flags]: a fresh data folder, pinned. The
# generator is one source standing for a proxy: no per-source rate limits.
start_server() {
	local name=$1
	shift
	DATA=$WORK/data-$name
	rm -rf "$DATA"
	# shellcheck disable=SC2086 # SERVER_ENV is a list of NAME=value words
	env ${SERVER_ENV:-} taskset -c "$SERVER_CPU" "$BIN/voicemail" serve --demo --data-dir "$DATA" \
		--sip-listen "udp:127.0.0.1:$SIP_PORT" --sip-public-addr 127.0.0.1 \
		--http-listen "127.0.0.1:$HTTP_PORT" --rtp-ports "$RTP_PORTS" \
		--sip-max-calls "$MAX_CALLS" $LOG_FLAG \
		--sip-rate-limit-invite 0 --sip-rate-limit-subscribe 0 $SERVER_FLAGS "$@" \
		>"$OUT/server-$name.log" 2>&1 &
	SERVER_PID=$!
	for _ in $(seq 1 100); do
		curl -fs "http://127.0.0.1:$HTTP_PORT/healthz" >/dev/null 2>&1 && { sleep 2; return 0; }
		sleep 0.1
	done
	echo "server did not start; see $OUT/server-$name.log" >&2
	exit 1
}

gen() { taskset -c "$GEN_CPU" "$BIN/vmload" run -server "127.0.0.1:$SIP_PORT" -seconds "$SECONDS_AUDIO" \
	-audio "$WORK/speech.ulaw" -json "$OUT/results.jsonl" -pid "$SERVER_PID" -metrics "$METRICS_URL" $VMLOAD_FLAGS "$@"; }

suite_deposit() {
	for n in "$@"; do
		start_server "deposit-$n"
		gen -label "deposit-$n" -mode deposit -concurrent "$n" -calls "$n" -rate "$RAMP" -data "${MEDIA_DIR:-$DATA/media}"
		stop_server
	done
}

suite_dtmf() {
	for n in "$@"; do
		start_server "dtmf-$n"
		gen -label "dtmf-$n" -mode deposit -concurrent "$n" -calls "$n" -rate "$RAMP" -dtmf-probe 5 -data "${MEDIA_DIR:-$DATA/media}"
		stop_server
	done
}

suite_plain() {
	for n in "$@"; do
		start_server "plain-$n" --prompts-dir "$WORK/silent-prompts"
		# Ramp within ~8 s so that all n calls (20.4 s each) are up at once.
		gen -label "plain-$n" -mode plain -concurrent "$n" -calls "$n" -rate "$(((n + 7) / 8 > RAMP ? (n + 7) / 8 : RAMP))" -data "${MEDIA_DIR:-$DATA/media}"
		stop_server
	done
}

# setup RATE...: 1 s calls at RATE calls/s for SETUP_SECONDS.
suite_setup() {
	local secs=${SETUP_SECONDS:-20}
	for r in "$@"; do
		start_server "setup-$r"
		gen -label "setup-$r" -mode setup -hold 1s -rate "$r" -calls "$((r * secs))" -concurrent "$((r * 4))"
		stop_server
	done
}

# sipp_calibrate: greet_ms (greeting + beep + 400 ms, measured by one
# vmload call) and talk_ms for the sipp scenario.
sipp_calibrate() {
	command -v sipp >/dev/null || { echo "sipp not installed (apt-get install sip-tester)" >&2; return 1; }
	start_server sipp-calibrate
	local pk
	pk=$("$BIN/vmload" run -server "127.0.0.1:$SIP_PORT" -calls 1 -concurrent 1 -seconds 1 \
		-audio "$WORK/speech.ulaw" 2>&1 | sed -n 's/.*greeting + beep = \([0-9]*\) packets.*/\1/p')
	stop_server
	greet_ms=$((pk * 20 + 400)) talk_ms=$((SECONDS_AUDIO * 1000 + 200))
	sed "s|SPEECH_FILE|$WORK/speech.ulaw|" testcalls/load/sipp_deposit.xml >"$WORK/sipp_deposit.xml"
}

# wait_sipp SECONDS: -bg detaches sipp; wait for the sipp process of this
# run (matched by its scenario path) to finish.
wait_sipp() {
	for _ in $(seq 1 "$1"); do
		pgrep -f "sipp -sf $WORK/sipp_deposit.xml" >/dev/null || break
		sleep 1
	done
}

suite_sipp() {
	sipp_needs_own_ports
	command -v sipp >/dev/null || { echo "sipp not installed; skipping the sipp suite" >&2; return 0; }
	local greet_ms talk_ms
	sipp_calibrate
	for n in "$@"; do
		start_server "sipp-$n"
		local d=$WORK/sipp-$n
		rm -rf "$d"
		mkdir -p "$d"
		local ramp_s=$(((n + RAMP - 1) / RAMP))
		"$BIN/vmload" sample -pid "$SERVER_PID" -after "$((ramp_s + 1))s" \
			-for "$((greet_ms / 1000 + SECONDS_AUDIO - 2))s" >"$d/sample.json" &
		local sp=$!
		(cd "$d" && taskset -c "$GEN_CPU" sipp -sf "$WORK/sipp_deposit.xml" \
			-s 1001 -i 127.0.0.1 -p "$SIPP_PORT" -mp "$SIPP_MEDIA_PORT" -nostdin -bg -m "$n" -l "$n" -r "$RAMP" \
			-timeout "$((ramp_s + greet_ms / 1000 + SECONDS_AUDIO + 60))s" -timeout_error \
			-key greet_ms "$greet_ms" -key talk_ms "$talk_ms" \
			-trace_stat -stf "$d/stat.csv" -fd 1 -trace_rtt -rtt_freq 1 \
			-watchdog_minor_maxtriggers 1000000 -watchdog_major_maxtriggers 1000000 \
			"127.0.0.1:$SIP_PORT" >"$d/sipp.out" 2>&1) || true
		wait_sipp $((ramp_s + greet_ms / 1000 + SECONDS_AUDIO + 90))
		wait "$sp" || true
		"$BIN/vmload" sippreport -label "sipp-$n" -level "$n" -seconds "$SECONDS_AUDIO" -audio "$WORK/speech.ulaw" \
			-stat "$d/stat.csv" -rtt "$(ls "$d"/*_rtt.csv 2>/dev/null | head -1)" \
			-sample "$d/sample.json" -data "${MEDIA_DIR:-$DATA/media}" -json "$OUT/results.jsonl"
		stop_server
	done
}

# churn_limit N: the server's call limit for a churn level. A call counts
# until its message is committed, and vmload replaces it at the BYE's
# 200: a limit of exactly N refuses replacements with 503 (at 5,000 with
# the default limit of 5,000, half the calls), which measures the limit,
# not the server.
churn_limit() {
	[ "$MAX_CALLS" -ge $(($1 * 3 / 2)) ] || MAX_CALLS=$(($1 * 3 / 2))
}

# perf_start LABEL: with PERF_SECONDS, a perf record of the server from
# PERF_DELAY s after its start (default 11: inside the steady window; 29 s
# covers greetings, recordings and commits) to $OUT/perf-LABEL.data, its
# pid in PERF_PID; perf_wait waits for it. `perf script -i … | vmload
# perfbudget` sums it up.
PERF_PID=
perf_start() {
	PERF_PID=
	[ -n "${PERF_SECONDS:-}" ] || return 0
	(sleep "${PERF_DELAY:-11}" && perf record -F 499 -g -p "$SERVER_PID" -o "$OUT/perf-$1.data" -- sleep "$PERF_SECONDS") \
		>"$OUT/perf-$1.log" 2>&1 &
	PERF_PID=$!
}
perf_wait() { [ -z "$PERF_PID" ] || wait "$PERF_PID" || true; }

# churn_run LABEL N [server flags…]: one level of the churn mix (issue
# 18): N calls held, N/10 new calls per second, 2N in all (sipp -l N -r
# N/10 -m 2N); each call hears the greeting and beep, speaks 20 s and
# hangs up, and ended calls are replaced at once. Server CPU over the
# steady window (the level full → the last call launched) and as CPU
# seconds per completed call over the whole run; every recording compared
# frame by frame; the server's RTP counters before/after.
churn_run() {
	local label=$1 n=$2
	shift 2
	churn_limit "$n"
	start_server "$label" "$@"
	perf_start "$label"
	gen -label "$label" -mode churn -concurrent "$n" -calls "$((n * ${CHURN_SECONDS:-20} / 10))" -rate "$(awk "BEGIN{print $n/10}")" \
		-data "${MEDIA_DIR:-$DATA/media}"
	perf_wait
	stop_server
}

suite_churn() {
	local LOG_FLAG=${LOG_LEVEL:+--log-level $LOG_LEVEL}
	for n in "$@"; do
		churn_run "churn-$n" "$n"
	done
}

# plainchurn: the churn mix against silent prompts (the calls beep and
# record at once): the method of the plain-recording target of issue 18.
suite_plainchurn() {
	local LOG_FLAG=${LOG_LEVEL:+--log-level $LOG_LEVEL}
	for n in "$@"; do
		churn_run "plainchurn-$n" "$n" --prompts-dir "$WORK/silent-prompts"
	done
}

# The same mix from sipp, the independent caller: the same audio, the same
# window (computed by vmload window from the greeting length), the server
# sampled the same way.
# sipp_needs_own_ports: sipp's rtp_stream sends every call's audio from
# one socket and announces no a=ssrc; the shared RTP port drops that by
# design (docs/performance.md), so a sipp run there measures nothing.
sipp_needs_own_ports() {
	case " ${SERVER_FLAGS:-} " in
	*"--media-rtp-mux true"* | *"--media-rtp-mux=true"*)
		echo "sipp runs need per-call RTP ports: drop --media-rtp-mux from SERVER_FLAGS" >&2
		return 1
		;;
	esac
}

suite_sippchurn() {
	sipp_needs_own_ports
	local LOG_FLAG=${LOG_LEVEL:+--log-level $LOG_LEVEL}
	local greet_ms talk_ms
	sipp_calibrate
	for n in "$@"; do
		local rate=$(((n + 9) / 10)) d=$WORK/sippchurn-$n
		local call_ms=$((greet_ms + talk_ms))
		local win from to
		win=$("$BIN/vmload" window -level "$n" -calls "$((2 * n))" -rate "$rate" -call "${call_ms}ms")
		from=${win% *} to=${win#* }
		start_server "sippchurn-$n"
		rm -rf "$d"
		mkdir -p "$d"
		"$BIN/vmload" metrics -url "$METRICS_URL" >"$d/metrics-before.json"
		"$BIN/vmload" sample -pid "$SERVER_PID" -after "${from}s" -for "$(awk "BEGIN{print $to-$from}")s" -until 1h >"$d/sample.json" &
		local sp=$!
		local limit=$((2 * n / rate + call_ms / 1000 * 2 + 60))
		(cd "$d" && taskset -c "$GEN_CPU" sipp -sf "$WORK/sipp_deposit.xml" \
			-s 1001 -i 127.0.0.1 -p "$SIPP_PORT" -mp "$SIPP_MEDIA_PORT" -nostdin -bg -m "$((2 * n))" -l "$n" -r "$rate" \
			-timeout "${limit}s" -timeout_error \
			-key greet_ms "$greet_ms" -key talk_ms "$talk_ms" \
			-trace_stat -stf "$d/stat.csv" -fd 1 -trace_rtt -rtt_freq 1 \
			-watchdog_minor_maxtriggers 1000000 -watchdog_major_maxtriggers 1000000 \
			"127.0.0.1:$SIP_PORT" >"$d/sipp.out" 2>&1) || true
		# sipp's own CPU over its run (it prints its PID in background mode).
		local sipp_pid gp=
		sipp_pid=$(sed -n 's/.*PID=\[\([0-9]*\)\].*/\1/p' "$d/sipp.out" | head -1)
		if [ -n "$sipp_pid" ]; then
			"$BIN/vmload" sample -pid "$sipp_pid" -for 1h >"$d/sipp-sample.json" &
			gp=$!
		fi
		wait_sipp $((limit + 30))
		[ -z "$gp" ] || { kill -TERM "$gp" 2>/dev/null || true; wait "$gp" || true; }
		# The last commits follow the last BYE within milliseconds.
		sleep 3
		kill -TERM "$sp" 2>/dev/null || true
		wait "$sp" || true
		"$BIN/vmload" sippreport -label "sippchurn-$n" -mode sipp-churn -level "$n" -seconds "$SECONDS_AUDIO" \
			-audio "$WORK/speech.ulaw" -window-from "$from" -window-to "$to" \
			-stat "$d/stat.csv" -rtt "$(ls "$d"/*_rtt.csv 2>/dev/null | head -1)" \
			-sample "$d/sample.json" -gen-sample "$d/sipp-sample.json" -data "${MEDIA_DIR:-$DATA/media}" \
			-metrics-before "$d/metrics-before.json" -metrics "$METRICS_URL" -json "$OUT/results.jsonl"
		stop_server
	done
}

{
	echo "# $(date -u +%FT%TZ) $(uname -srm), $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)"
	echo "# loadavg before: $(cat /proc/loadavg)"
} >>"$OUT/machine.txt"

# suite_mwi N: NOTIFY after BYE while N deposits run. vmload holds N
# deposits to 1001; once they are up, TestMWIBenchDepositToNotify (4 lanes,
# each a subscriber on its own mailbox) times BYE → NOTIFY against this
# server.
suite_mwi() {
	# Built first, so that no compiler competes with the measurement.
	(cd "$ROOT" && go test -c -o "$WORK/testcalls.test" ./testcalls/)
	for n in "$@"; do
		start_server "mwi-$n" --recording-min-seconds 1
		gen -label "mwi-$n" -mode deposit -concurrent "$n" -calls "$n" -rate "$RAMP" -data "${MEDIA_DIR:-$DATA/media}" &
		local gen_pid=$!
		sleep $(( n / RAMP + 12 ))  # ramp, then the greetings of the last calls
		(cd "$ROOT/testcalls" && VOICEMAIL_MWI_BENCH=${MWI_DEPOSITS:-4} VOICEMAIL_BIN="$BIN/voicemail" \
			VOICEMAIL_MWI_BENCH_SERVER="$SIP_PORT,$HTTP_PORT,$(cat "$DATA/admin_token")" \
			taskset -c "$GEN_CPU" "$WORK/testcalls.test" -test.count=1 -test.run TestMWIBenchDepositToNotify -test.v) \
			| grep -E 'BYE → NOTIFY|FAIL|^ok|PASS' | tee -a "$OUT/mwi-$n.txt"
		wait "$gen_pid"
		stop_server
	done
}

if [ -n "${SMOKE:-}" ]; then
	set -- smoke
fi
what=${1:-all}
[ $# -gt 0 ] && shift
case $what in
deposit) suite_deposit "${@:-100 200 400 600 800}" ;;
dtmf) suite_dtmf "${@:-500}" ;;
plain) suite_plain "${@:-500 1000 2000 3000}" ;;
setup) suite_setup "${@:-200 400 600 800}" ;;
sipp) suite_sipp "${@:-100 200 400}" ;;
churn) suite_churn "${@:-100 200 400}" ;;
plainchurn) suite_plainchurn "${@:-2000 5000}" ;;
sippchurn) suite_sippchurn "${@:-100 200 400}" ;;
crosscheck)
	# Both churn generators, level by level, so that they see the same
	# machine conditions as nearly as possible.
	for n in "${@:-100 200 400}"; do
		suite_churn "$n"
		suite_sippchurn "$n"
	done
	;;
mwi) suite_mwi "${@:-500}" ;;
smoke)
	SECONDS_AUDIO=3
	"$BIN/vmload" mkaudio -seconds 3 -out "$WORK/speech.ulaw"
	suite_deposit 10
	suite_plain 20
	SETUP_SECONDS=3 suite_setup 20
	suite_sipp 5
	suite_churn 10
	suite_plainchurn 10
	suite_sippchurn 10
	;;
all)
	suite_deposit 100 200 400 600 800
	suite_dtmf 500
	suite_plain 500 1000 2000 3000
	suite_setup 200 400 600 800
	suite_sipp 100 200 400
	suite_mwi 500
	;;
*)
	echo "usage: $0 [all|deposit|dtmf|plain|setup|sipp|churn|plainchurn|sippchurn|crosscheck|mwi|smoke] [levels...]" >&2
	exit 2
	;;
esac
echo "# loadavg after: $(cat /proc/loadavg)" >>"$OUT/machine.txt"
"$BIN/vmload" table "$OUT/results.jsonl" >"$OUT/table.md"
cat "$OUT/table.md"
