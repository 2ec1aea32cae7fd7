#!/bin/sh
# Install the Debian packages ccbroker needs to build, test and run.
# Skips what is present; runs apt-get as root, or through sudo otherwise.
set -eu

PKGS="build-essential pkg-config libzmq3-dev libssl-dev openssl libmsgpack-dev
liblmdb-dev lmdb-utils libcriterion-dev libjansson-dev libinih-dev uuid-dev
python3 python3-zmq python3-msgpack python3-cryptography"

case "${1:-}" in
bench) PKGS="$PKGS mosquitto libmosquitto-dev nats-server libnats-dev" ;;
# libFuzzer and the sanitizer runtimes are only recommended by clang-14.
fuzz) PKGS="$PKGS clang libclang-rt-14-dev" ;;
valgrind) PKGS="$PKGS valgrind" ;;
esac

missing=""
for p in $PKGS; do
	dpkg-query -W -f='${Status}\n' "$p" 2>/dev/null | grep -q '^install ok installed$' ||
		missing="$missing $p"
done
[ -z "$missing" ] && exit 0

if [ "$(id -u)" -eq 0 ]; then
	SUDO=""
elif command -v sudo >/dev/null 2>&1; then
	SUDO="sudo"
else
	echo "deps.sh: need root or sudo to install:$missing" >&2
	exit 1
fi

echo "deps.sh: installing$missing" >&2
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -q >&2
# shellcheck disable=SC2086
$SUDO apt-get install -y -q --no-install-recommends $missing >&2
