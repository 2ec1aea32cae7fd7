#!/bin/sh
#
# run.sh - the benchmarks of issue 13, side by side on loopback:
# ccbroker, bench/nullbroker, a bare CurveZMQ relay, Mosquitto and NATS
# JetStream, each BENCH_RUNS times interleaved; then latency at a fixed
# rate, the offline backlog and the consent decision function.  Prints a
# table, writes bench/results.json, and ends with the five ratio lines.
#
#   bench/run.sh [BUILD_DIR]
#
# Environment (defaults in brackets):
#   BENCH_RUNS      rounds of the five throughput scenarios [3]
#   BENCH_MSGS      messages per throughput run (x3 deliveries) [30000]
#   BENCH_LAT_RATE  publishes/s of the latency runs [1000]
#   BENCH_LAT_SECS  seconds of each latency run [10]
#   BENCH_BACKLOG   messages queued for the offline agency; 0 skips [1000000]
#   BENCH_DECIDE    subjects in the decision benchmark; 0 skips [1000000]
#   BENCH_OUT       where results.json goes [bench/results.json]
#   BENCH_SCENARIOS which scenarios, in order [ccbroker null raw-curve mosquitto nats]
#   BENCH_CCBROKER  the ccbroker binary to measure [BUILD_DIR/bin/ccbroker]
#   BENCH_KEEP=1    keep the temporary directory
#
# Every broker runs on 127.0.0.1 on a free port, is started fresh (empty
# store) for each run and stopped after it; every step has a time limit.
#
set -eu

build=${1:-build}
here=$(cd "$(dirname "$0")/.." && pwd)
bdir=$(cd "$build" && pwd)
LG=$bdir/bench/loadgen
CCBROKER=${BENCH_CCBROKER:-$bdir/bin/ccbroker}
RUNS=${BENCH_RUNS:-3}
MSGS=${BENCH_MSGS:-30000}
LAT_RATE=${BENCH_LAT_RATE:-1000}
LAT_SECS=${BENCH_LAT_SECS:-10}
BACKLOG=${BENCH_BACKLOG:-1000000}
DECIDE=${BENCH_DECIDE:-1000000}
OUT=${BENCH_OUT:-$here/bench/results.json}
AREA=E08000035
SCENARIOS=${BENCH_SCENARIOS:-"ccbroker null raw-curve mosquitto nats"}
# Debian installs both daemons in /usr/sbin.
PATH=$PATH:/usr/sbin:/sbin
export PATH

dir=$(mktemp -d "${TMPDIR:-/tmp}/ccbench-XXXXXX")
results=$dir/results.jsonl
pid=""

stop()
{
	[ -n "$pid" ] || return 0
	kill -TERM "$pid" 2>/dev/null || true
	i=0
	while kill -0 "$pid" 2>/dev/null && [ $i -lt 100 ]; do
		sleep 0.1
		i=$((i + 1))
	done
	kill -KILL "$pid" 2>/dev/null || true
	wait "$pid" 2>/dev/null || true
	pid=""
}

cleanup()
{
	stop
	if [ "${BENCH_KEEP:-}" = 1 ]; then
		echo "(kept $dir)" >&2
	else
		rm -rf "$dir"
	fi
}
trap cleanup EXIT
trap 'exit 1' INT TERM HUP

say()
{
	printf '%s\n' "$*" >&2
}

die()
{
	say "bench: $*"
	exit 1
}

# ------------------------------------------------------------ the set-up
say "bench: setting up in $dir"
"$here/certs-example/mkpartnership.sh" "$dir/pki" >/dev/null 2>&1 ||
    die "mkpartnership.sh failed"
chmod 600 "$dir"/pki/*.key "$dir"/pki/keys/*.key

# A small EC TLS CA for Mosquitto and NATS: the server is localhost, each
# agency has a client certificate (mutual TLS, as CURVE is mutual).
tls=$dir/tls
mkdir -p "$tls"
tlscert()
{
	openssl ecparam -name prime256v1 -genkey -noout -out "$tls/$1.key"
	openssl req -new -key "$tls/$1.key" -subj "/CN=$1" -out "$tls/$1.csr"
	printf "$2" >"$tls/$1.ext"
	openssl x509 -req -in "$tls/$1.csr" -CA "$tls/ca.crt" \
	    -CAkey "$tls/ca.key" -CAcreateserial -days 7 \
	    -extfile "$tls/$1.ext" -out "$tls/$1.crt" 2>/dev/null
	rm -f "$tls/$1.csr" "$tls/$1.ext"
}
(
	set -e
	openssl ecparam -name prime256v1 -genkey -noout -out "$tls/ca.key"
	openssl req -x509 -new -key "$tls/ca.key" -subj "/CN=ccbench TLS CA" \
	    -days 7 -out "$tls/ca.crt" 2>/dev/null
	tlscert localhost \
	    "subjectAltName=DNS:localhost,IP:127.0.0.1\nextendedKeyUsage=serverAuth\n"
	for a in carat.hmp-leeds cjit.leeds probation.leeds \
	    housing.leeds-hostels; do
		tlscert "$a" "extendedKeyUsage=clientAuth\n"
	done
) >/dev/null 2>&1 || die "cannot make the TLS certificates"

printf '{"kind": "machine", "nproc": %d, "cpu": "%s", "kernel": "%s", "mosquitto": "%s", "nats_server": "%s", "libzmq": "%s"}\n' \
    "$(nproc)" \
    "$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -1)" \
    "$(uname -r)" \
    "$(dpkg-query -W -f='${Version}' mosquitto 2>/dev/null)" \
    "$(dpkg-query -W -f='${Version}' nats-server 2>/dev/null)" \
    "$(pkg-config --modversion libzmq)" >"$results"

# ------------------------------------------------------------ the peers
# start_X NAME: start a fresh broker of kind X in $dir/NAME; sets $pid and
# $ep (the load generator's endpoint) and waits until it listens.
waitup()
{
	"$LG" waitport "$1" 10 || die "$2 did not come up (see $dir/$3)"
}

start_ccbroker()
{
	port=$("$LG" freeport)
	mkdir -p "$dir/$1"
	cat >"$dir/$1/broker.conf" <<-EOF
	[broker]
	bind = tcp://127.0.0.1:$port
	data = $dir/$1/data
	certificate = $dir/pki/broker.crt
	key = $dir/pki/broker.key
	ca = $dir/pki/ca.crt
	crl = $dir/pki/ca.crl
	agencies = $dir/pki/agencies
	map_size_mb = ${2:-4096}

	[agency.carat.hmp-leeds]
	areas = $AREA
	[agency.cjit.leeds]
	areas = $AREA
	[agency.probation.leeds]
	areas = $AREA
	[agency.housing.leeds-hostels]
	areas = $AREA
	[agency.la.leeds]
	areas = $AREA
	EOF
	"$CCBROKER" init -c "$dir/$1/broker.conf" >/dev/null
	"$CCBROKER" run -c "$dir/$1/broker.conf" 2>"$dir/$1/log" &
	pid=$!
	ep=tcp://127.0.0.1:$port
	waitup "$port" ccbroker "$1/log"
}

start_null()
{
	port=$("$LG" freeport)
	mkdir -p "$dir/$1"
	"$bdir/bench/nullbroker" -e "tcp://127.0.0.1:$port" \
	    -k "$dir/pki/broker.key" 2>"$dir/$1/log" &
	pid=$!
	ep=tcp://127.0.0.1:$port
	waitup "$port" nullbroker "$1/log"
}

start_raw()
{
	port=$("$LG" freeport)
	mkdir -p "$dir/$1"
	"$bdir/bench/rawrelay" -e "tcp://127.0.0.1:$port" \
	    -k "$dir/pki/broker.key" 2>"$dir/$1/log" &
	pid=$!
	ep=tcp://127.0.0.1:$port
	waitup "$port" rawrelay "$1/log"
}

# Mosquitto: persistence on (its default autosave, no fsync per message),
# the same delivery window as ccbroker (256), queues large enough that no
# QoS 1 message is ever dropped, TCP_NODELAY as ZeroMQ sets it.
start_mosquitto()
{
	port=$("$LG" freeport)
	mkdir -p "$dir/$1"
	cat >"$dir/$1/mosquitto.conf" <<-EOF
	per_listener_settings false
	listener $port 127.0.0.1
	cafile $tls/ca.crt
	certfile $tls/localhost.crt
	keyfile $tls/localhost.key
	require_certificate true
	use_identity_as_username true
	allow_anonymous false
	persistence true
	persistence_location $dir/$1/
	max_inflight_messages 256
	max_queued_messages 1000000
	set_tcp_nodelay true
	log_dest stderr
	log_type error
	log_type warning
	connection_messages false
	EOF
	# As root Mosquitto would switch to its own user, who cannot read
	# the keys made here.
	[ "$(id -u)" -ne 0 ] || echo "user root" >>"$dir/$1/mosquitto.conf"
	mosquitto -c "$dir/$1/mosquitto.conf" 2>"$dir/$1/log" &
	pid=$!
	ep=127.0.0.1:$port
	waitup "$port" mosquitto "$1/log"
}

# NATS: JetStream with file storage (2.9 syncs to disk in the background,
# not before a PubAck), mutual TLS.
start_nats()
{
	port=$("$LG" freeport)
	mkdir -p "$dir/$1"
	cat >"$dir/$1/nats.conf" <<-EOF
	listen: 127.0.0.1:$port
	tls {
	  cert_file: "$tls/localhost.crt"
	  key_file: "$tls/localhost.key"
	  ca_file: "$tls/ca.crt"
	  verify: true
	}
	jetstream {
	  store_dir: "$dir/$1/js"
	  max_memory_store: 268435456
	  max_file_store: 17179869184
	}
	EOF
	nats-server -c "$dir/$1/nats.conf" 2>"$dir/$1/log" >&2 &
	pid=$!
	ep=127.0.0.1:$port
	waitup "$port" nats-server "$1/log"
}

# run SCENARIO NAME [LOADGEN OPTIONS]: one run against a fresh broker.
run()
{
	sc=$1
	name=$2
	shift 2
	case $sc in
	ccbroker)	start_ccbroker "$name"; mode=wire; auth="-k $dir/pki" ;;
	null)		start_null "$name"; mode=wire; auth="-k $dir/pki" ;;
	raw-curve)	start_raw "$name"; mode=raw; auth="-k $dir/pki" ;;
	mosquitto)	start_mosquitto "$name"; mode=mqtt; auth="-t $tls" ;;
	nats)		start_nats "$name"; mode=nats; auth="-t $tls" ;;
	esac
	# shellcheck disable=SC2086
	timeout 600 "$LG" "$mode" -e "$ep" $auth -p "$pid" -s "$sc" \
	    -o "$results" "$@" || { stop; die "$sc: load generator failed"; }
	stop
	rm -rf "${dir:?}/$name"
}

# ------------------------------------------------------------ 1-6
say "bench: throughput, $RUNS rounds of $SCENARIOS ($MSGS messages each)"
r=1
while [ "$r" -le "$RUNS" ]; do
	for sc in $SCENARIOS; do
		run "$sc" "$sc-$r" -r "$r" -n "$MSGS"
	done
	r=$((r + 1))
done

# ------------------------------------------------------------ 7
say "bench: latency at $LAT_RATE publishes/s for $LAT_SECS s"
for sc in $SCENARIOS; do
	run "$sc" "$sc-lat" -L "$LAT_RATE" -T "$LAT_SECS"
done

# ------------------------------------------------------------ 8
if [ "$BACKLOG" -gt 0 ]; then
	say "bench: offline backlog of $BACKLOG messages"
	# About 5 KiB of store per queued message (its sealed payload takes
	# a page of its own), room to spare, and the reserve.
	start_ccbroker backlog $((BACKLOG * 8 / 1024 + 2048))
	timeout 1800 "$LG" wire -e "$ep" -k "$dir/pki" -p "$pid" \
	    -s ccbroker -B "$BACKLOG" -o "$results" ||
	    { stop; die "backlog: load generator failed"; }
	stop
	rm -rf "$dir/backlog"
fi

# ------------------------------------------------------------ 9
if [ "$DECIDE" -gt 0 ]; then
	say "bench: consent decisions over $DECIDE subjects"
	timeout 600 "$bdir/bench/bench_decide" "$DECIDE" >"$dir/decide.out" ||
	    say "bench: bench_decide reported a failure"
	cat "$dir/decide.out" >&2
	rate=$(sed -n 's/.*= \([0-9]*\) decisions\/s.*/\1/p' "$dir/decide.out")
	[ -n "$rate" ] && printf '{"kind": "decide", "subjects": %d, "decisions_per_s": %s}\n' \
	    "$DECIDE" "$rate" >>"$results"
fi

"$bdir/bench/report" "$results" "$OUT"
