#!/bin/sh
#
# mkpartnership.sh - make an EXAMPLE ccbroker partnership with the openssl
# command line tool alone (DESIGN §3).  Never use its output in production:
# the CA key lies next to the certificates it signs.
#
#   mkpartnership.sh [-d DAYS] [DIR]
#	A whole partnership: Ed25519 CA and CRL, the broker, the five demo
#	agencies and one revoked agency.  DIR defaults to the partnership/
#	directory beside this script and must not hold a partnership yet.
#   mkpartnership.sh [-d DAYS] [-o ORG] [-k KEY] -i ID TYPE
#	    [--not-before TIME --not-after TIME] DIR
#	Issue one more agency certificate and key (-k: for the key in the
#	file KEY, a renewal that keeps the key).  TIME is YYYYMMDDHHMMSSZ
#	(or YYMMDDHHMMSSZ), years 1950 to 2049; it makes expired or
#	not-yet-valid certificates for tests.
#   mkpartnership.sh [-d DAYS] -r ID DIR
#	Revoke an agency and publish a new CRL valid for DAYS.
#   mkpartnership.sh [-d DAYS] -g [--not-before TIME --not-after TIME] DIR
#	Publish a fresh CRL (a CRL past its next update fails every check);
#	TIMEs set its last and next update instead of now and DAYS from now,
#	to make CRLs out of date (or nearly) for tests.
#
# Layout: DIR/ca.crt ca.key ca.crl, DIR/broker.crt broker.key,
# DIR/agencies/ID.crt, DIR/keys/ID.key (0600), DIR/ca-db/ (the CA's index of
# revoked certificates, from which the CRL is made).
#
# Every key is X25519 (`openssl genpkey -algorithm x25519`) and is the
# holder's CurveZMQ key; the CA signs with Ed25519.  An X25519 key cannot
# sign, so certificates are made with `openssl x509 -new -force_pubkey`.
#
set -eu
umask 022
LC_ALL=C
export LC_ALL

prog=${0##*/}
here=$(cd "$(dirname "$0")" && pwd)

CA_ORG="Example Leeds Partnership"
BROKER_ID=broker.example
BROKER_ORG="Example Leeds Partnership"

# The agencies of the demo: id, type, organisation.
DEMO_AGENCIES="carat.hmp-leeds:prison-carat:HMP Leeds CARAT Team (example)
cjit.leeds:cjit:Leeds CJIT (example)
probation.leeds:probation:Probation Service Leeds (example)
housing.leeds-hostels:housing-provider:Leeds Hostels Association (example)
la.leeds:la-housing:Leeds City Council Housing Options (example)
revoked.agency:cjit:Revoked Agency (example)"
REVOKED="revoked.agency"

TYPES="prison-carat cjit probation housing-provider la-housing
treatment-provider hacs broker"

usage()
{
	sed -n '7,22s/^# \{0,1\}//p' "$here/$prog" >&2
	exit "${1:-2}"
}

die()
{
	echo "$prog: $*" >&2
	exit 1
}

# Run openssl quietly; show what it said only when it fails.
ossl()
{
	if ! openssl "$@" >"$tmp/out" 2>"$tmp/err"; then
		cat "$tmp/err" >&2
		die "openssl $1 failed"
	fi
}

need()
{
	[ "$1" -gt "$2" ] || usage
}

days=365
mode="make"
dir=
id=
type=
org=
nb=
na=
keyfile=
while [ $# -gt 0 ]; do
	case $1 in
	-d)	need $# 1; days=$2; shift 2 ;;
	-i)	need $# 2; mode=issue; id=$2; type=$3; shift 3 ;;
	-r)	need $# 1; mode=revoke; id=$2; shift 2 ;;
	-g)	mode=crl; shift ;;
	-o|--org) need $# 1; org=$2; shift 2 ;;
	-k)	need $# 1; keyfile=$2; shift 2 ;;
	--not-before) need $# 1; nb=$2; shift 2 ;;
	--not-after) need $# 1; na=$2; shift 2 ;;
	-h|--help) usage 0 ;;
	-*)	usage ;;
	*)	[ -z "$dir" ] || usage; dir=$1; shift ;;
	esac
done

case $days in
''|*[!0-9]*) die "-d: DAYS must be a positive number" ;;
esac
[ "$days" -gt 0 ] || die "-d: DAYS must be a positive number"
if [ -z "$dir" ]; then
	[ "$mode" = make ] || usage
	dir=$here/partnership
fi
command -v openssl >/dev/null 2>&1 || die "openssl not found"

tmp=$(mktemp -d "${TMPDIR:-/tmp}/mkpartnership.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
trap 'exit 1' HUP INT TERM

# DESIGN §3: agency ids are [a-z0-9.-]{3,64}.
check_id()
{
	expr "x$1" : 'x[a-z0-9.-]\{3,64\}$' >/dev/null ||
	    die "bad agency id '$1' (want [a-z0-9.-]{3,64})"
}

# Unknown types are allowed, with a warning, so tests can make them.
check_type()
{
	for t in $TYPES; do
		[ "$t" = "$1" ] && return 0
	done
	expr "x$1" : 'x[a-z0-9-]\{1,63\}$' >/dev/null ||
	    die "bad agency type '$1'"
	echo "$prog: warning: '$1' is not an agency type" >&2
}

# A random positive 127-bit serial number.
serial()
{
	echo "0x7$(openssl rand -hex 16 | cut -c2-)"
}

# Bytes of a file, or of stdin, as one line of lower-case hex.
tohex()
{
	od -An -v -tx1 ${1+"$1"} | tr -d ' \n'
}

# Write the DER object given as hex to a file.  asn1parse can make an
# OCTET STRING from hex and -strparse writes out its contents.
unhex()
{
	printf 'asn1=SEQUENCE:w\n[w]\nx=FORMAT:HEX,OCTETSTRING:%s\n' "$1" \
	    >"$tmp/unhex.cnf"
	ossl asn1parse -genconf "$tmp/unhex.cnf" -noout -out "$tmp/unhex.der"
	ossl asn1parse -inform DER -in "$tmp/unhex.der"
	off=$(sed -n '2s/^ *\([0-9]*\):.*/\1/p' "$tmp/out")
	ossl asn1parse -inform DER -in "$tmp/unhex.der" -strparse "$off" \
	    -noout -out "$2"
}

# YYYYMMDDHHMMSSZ or YYMMDDHHMMSSZ to the UTCTime text, or die.
utctime()
{
	case $1 in
	[0-9][0-9][0-9][0-9][0-9][0-9][0-9][0-9][0-9][0-9][0-9][0-9][0-9][0-9]Z)
		y=$(echo "$1" | cut -c1-4)
		if [ "$y" -lt 1950 ] || [ "$y" -gt 2049 ]; then
			die "$1: year must be 1950 to 2049"
		fi
		echo "$1" | cut -c3- ;;
	[0-9][0-9][0-9][0-9][0-9][0-9][0-9][0-9][0-9][0-9][0-9][0-9]Z)
		echo "$1" ;;
	*)	die "bad time '$1' (want YYYYMMDDHHMMSSZ)" ;;
	esac
}

#
# Give a certificate other validity dates and sign it again.  OpenSSL 3.0
# has no -not_before/-not_after, `x509 -preserve_dates` refuses an expired
# input and `openssl ca` needs a request signed by the subject key (an
# X25519 key cannot sign), so the dates are replaced in the DER: both
# UTCTimes keep their length, the TBS part is signed again with the CA key
# (Ed25519, fixed 64-byte signature) and the whole keeps its layout.
#
redate()
{
	crt=$1
	ossl x509 -in "$crt" -outform DER -out "$tmp/old.der"
	ossl asn1parse -inform DER -in "$tmp/old.der"
	cp "$tmp/out" "$tmp/parse"
	ob=$(sed -n 's/.*UTCTIME *:\([0-9]*Z\) *$/\1/p' "$tmp/parse" | sed -n 1p)
	oa=$(sed -n 's/.*UTCTIME *:\([0-9]*Z\) *$/\1/p' "$tmp/parse" | sed -n 2p)
	if [ ${#ob} -ne 13 ] || [ ${#oa} -ne 13 ]; then
		die "$crt: validity is not two UTCTimes"
	fi
	hex=$(tohex "$tmp/old.der")
	from=170d$(printf %s "$ob" | tohex)170d$(printf %s "$oa" | tohex)
	to=170d$(printf %s "$2" | tohex)170d$(printf %s "$3" | tohex)
	new=$(echo "$hex" | sed "s/$from/$to/")
	[ "$new" != "$hex" ] || die "$crt: validity not found"

	# Line 2 of asn1parse is the TBSCertificate: offset, header, length.
	line=$(sed -n 2p "$tmp/parse")
	off=$(echo "$line" | sed 's/^ *\([0-9]*\):.*/\1/')
	hl=$(echo "$line" | sed 's/.* hl= *\([0-9]*\) .*/\1/')
	len=$(echo "$line" | sed 's/.* l= *\([0-9]*\) .*/\1/')
	end=$(( (off + hl + len) * 2 ))
	head=$(echo "$new" | cut -c1-$((off * 2)))
	tbs=$(echo "$new" | cut -c$((off * 2 + 1))-$end)
	rest=$(echo "$new" | cut -c$((end + 1))-)
	# AlgorithmIdentifier Ed25519, then a BIT STRING of 64 bytes.
	case $rest in
	300506032b6570034100*) ;;
	*) die "$crt: not signed with Ed25519" ;;
	esac
	[ ${#rest} -eq $((14 + 6 + 128)) ] || die "$crt: unexpected layout"

	unhex "$tbs" "$tmp/tbs.der"
	ossl pkeyutl -sign -rawin -inkey "$dir/ca.key" -in "$tmp/tbs.der" \
	    -out "$tmp/sig.bin"
	unhex "${head}${tbs}300506032b6570034100$(tohex "$tmp/sig.bin")" \
	    "$tmp/new.der"
	ossl x509 -inform DER -in "$tmp/new.der" -out "$crt"
}

write_ext()
{
	cat >"$tmp/ext.cnf" <<-EOF
	[ca_ext]
	basicConstraints = critical, CA:true
	keyUsage = critical, keyCertSign, cRLSign
	subjectKeyIdentifier = hash
	[agency_ext]
	basicConstraints = critical, CA:false
	keyUsage = critical, keyAgreement
	extendedKeyUsage = clientAuth
	subjectKeyIdentifier = hash
	authorityKeyIdentifier = keyid:always
	[broker_ext]
	basicConstraints = critical, CA:false
	keyUsage = critical, keyAgreement
	extendedKeyUsage = serverAuth
	subjectKeyIdentifier = hash
	authorityKeyIdentifier = keyid:always
	EOF
}

# The `openssl ca` configuration, used only to revoke and to make CRLs.
write_ca_cnf()
{
	cat >"$tmp/ca.cnf" <<-EOF
	[ca]
	default_ca = cc_ca
	[cc_ca]
	database = $dir/ca-db/index.txt
	crlnumber = $dir/ca-db/crlnumber
	new_certs_dir = $tmp
	serial = $tmp/serial
	certificate = $dir/ca.crt
	private_key = $dir/ca.key
	default_md = default
	default_crl_days = $days
	unique_subject = no
	policy = cc_policy
	[cc_policy]
	organizationName = optional
	organizationalUnitName = optional
	commonName = supplied
	EOF
}

make_ca()
{
	(umask 077 && ossl genpkey -algorithm ed25519 -out "$dir/ca.key")
	ossl x509 -new -key "$dir/ca.key" -subj "/O=$CA_ORG/CN=$CA_ORG CA" \
	    -days "$days" -set_serial "$(serial)" -extfile "$tmp/ext.cnf" \
	    -extensions ca_ext -out "$dir/ca.crt"
	mkdir -p "$dir/ca-db"
	: >"$dir/ca-db/index.txt"
	echo 1000 >"$dir/ca-db/crlnumber"
}

# issue ID TYPE ORG CERT KEY EXTENSIONS
issue()
{
	[ ! -e "$4" ] || die "$4 exists; revoke and remove it first"
	if [ -n "$keyfile" ]; then
		# A renewal: the agency keeps its key (and its CurveZMQ key).
		[ -f "$keyfile" ] || die "$keyfile: no such key"
		if [ "$(cd "$(dirname "$keyfile")" && pwd)/${keyfile##*/}" != "$5" ]
		then
			(umask 077 && cp "$keyfile" "$5")
		fi
	else
		(umask 077 && ossl genpkey -algorithm x25519 -out "$5")
	fi
	ossl pkey -in "$5" -pubout -out "$tmp/pub.pem"
	d=$days
	[ -z "$nb" ] || d=1	# a template for redate, in UTCTime
	ossl x509 -new -force_pubkey "$tmp/pub.pem" -subj "/O=$3/OU=$2/CN=$1" \
	    -CA "$dir/ca.crt" -CAkey "$dir/ca.key" -days "$d" \
	    -set_serial "$(serial)" -extfile "$tmp/ext.cnf" -extensions "$6" \
	    -out "$4"
	[ -z "$nb" ] || redate "$4" "$nbu" "$nau"
	chmod 644 "$4"
}

gencrl()
{
	if [ -n "$nb" ]; then
		ossl ca -batch -config "$tmp/ca.cnf" -gencrl \
		    -crl_lastupdate "$nb" -crl_nextupdate "$na" \
		    -out "$dir/ca.crl"
	else
		ossl ca -batch -config "$tmp/ca.cnf" -gencrl -crldays "$days" \
		    -out "$dir/ca.crl"
	fi
}

revoke()
{
	[ -f "$dir/agencies/$1.crt" ] || die "no certificate $dir/agencies/$1.crt"
	ossl ca -batch -config "$tmp/ca.cnf" -revoke "$dir/agencies/$1.crt"
	gencrl
}

write_readme()
{
	cat >"$dir/README.md" <<-'EOF'
	# EXAMPLE ONLY — never use in production

	This partnership was made by `certs-example/mkpartnership.sh` for
	demonstrations.  Its CA key lies beside the certificates, every
	private key in it is public, and its certificates expire a year after
	they were made.  Tests and `make demo` make their own fresh
	partnership; nothing relies on this one staying in date.  A real
	partnership keeps its CA key offline and gives each agency only its
	own key.

	| file | what |
	|---|---|
	| `ca.crt`, `ca.key` | the partnership CA (Ed25519) |
	| `ca.crl` | the CRL; `revoked.agency` is on it |
	| `ca-db/` | the CA's index of revoked certificates |
	| `broker.crt`, `broker.key` | the broker, `CN=broker.example`, `OU=broker` |
	| `agencies/ID.crt` | one per agency, the revoked one too: the broker's `agencies` directory |
	| `keys/ID.key` | each agency's X25519 key, also its CurveZMQ key |

	Agencies: `carat.hmp-leeds` (prison-carat), `cjit.leeds` (cjit),
	`probation.leeds` (probation), `housing.leeds-hostels`
	(housing-provider), `la.leeds` (la-housing), `revoked.agency` (cjit,
	revoked).

	Git does not keep file modes.  After a checkout run
	`chmod 600 keys/*.key broker.key ca.key`, or ccbroker and ccagent
	refuse the keys as readable by others.

	## Issue, revoke, renew the CRL

	    mkpartnership.sh [-d DAYS] [DIR]              # a new partnership
	    mkpartnership.sh -i ID TYPE [-o ORG] DIR      # one more agency
	    mkpartnership.sh -r ID DIR                    # revoke, new CRL
	    mkpartnership.sh -g [-d DAYS] DIR             # fresh CRL only

	A CRL past its next update makes every certificate check fail, so
	renew it (`-g`) before then.  After issuing, revoking or renewing,
	send the broker SIGHUP to load the new certificates and CRL.  For
	tests, `-i ID TYPE DIR --not-before YYYYMMDDHHMMSSZ --not-after
	YYYYMMDDHHMMSSZ` makes an expired or not-yet-valid certificate.
	EOF
}

case $mode in
make)
	mkdir -p "$dir"
	dir=$(cd "$dir" && pwd)
	[ ! -e "$dir/ca.key" ] ||
	    die "$dir already holds a partnership; remove it first"
	[ -z "$nb$na" ] || die "--not-before/--not-after go with -i"
	[ -z "$keyfile" ] || die "-k goes with -i"
	write_ext
	make_ca
	write_ca_cnf
	mkdir -p "$dir/agencies" "$dir/keys"
	chmod 700 "$dir/keys"
	issue "$BROKER_ID" broker "$BROKER_ORG" "$dir/broker.crt" \
	    "$dir/broker.key" broker_ext
	echo "$DEMO_AGENCIES" | while IFS=: read -r aid atype aorg; do
		issue "$aid" "$atype" "$aorg" "$dir/agencies/$aid.crt" \
		    "$dir/keys/$aid.key" agency_ext
	done
	revoke "$REVOKED"
	write_readme
	echo "$prog: partnership in $dir (EXAMPLE ONLY)" >&2
	;;
issue)
	check_id "$id"
	check_type "$type"
	[ -n "$nb" ] && [ -n "$na" ] || [ -z "$nb$na" ] ||
	    die "--not-before and --not-after go together"
	if [ -n "$nb" ]; then
		nbu=$(utctime "$nb")
		nau=$(utctime "$na")
	fi
	[ -f "$dir/ca.key" ] || die "$dir: no partnership (ca.key missing)"
	dir=$(cd "$dir" && pwd)
	write_ext
	mkdir -p "$dir/agencies" "$dir/keys"
	issue "$id" "$type" "${org:-$id (example)}" "$dir/agencies/$id.crt" \
	    "$dir/keys/$id.key" agency_ext
	echo "$prog: issued $dir/agencies/$id.crt" >&2
	;;
revoke)
	check_id "$id"
	[ -z "$nb$na" ] || die "--not-before/--not-after go with -i or -g"
	[ -f "$dir/ca.key" ] || die "$dir: no partnership (ca.key missing)"
	dir=$(cd "$dir" && pwd)
	write_ca_cnf
	revoke "$id"
	echo "$prog: revoked $id; new CRL $dir/ca.crl" >&2
	;;
crl)
	[ -n "$nb" ] && [ -n "$na" ] || [ -z "$nb$na" ] ||
	    die "--not-before and --not-after go together"
	[ -z "$nb" ] || { utctime "$nb" >/dev/null; utctime "$na" >/dev/null; }
	[ -f "$dir/ca.key" ] || die "$dir: no partnership (ca.key missing)"
	dir=$(cd "$dir" && pwd)
	write_ca_cnf
	gencrl
	echo "$prog: new CRL $dir/ca.crl" >&2
	;;
esac
