#!/bin/sh
#
# demo.sh - a whole partnership on loopback, walking the story of one
# client leaving HMP Leeds: consent taken in prison, a release plan and a
# handover, a CJIT referral to a hostel, housing updates for probation,
# and a withdrawal that takes back a record still waiting in a queue.
#
#   scripts/demo.sh [BUILD_DIR]
#
# Everything runs in a temporary directory and is stopped at the end.
# DEMO_KEEP=1 keeps the directory; DEMO_QUIET=1 prints only the summary
# lines the tests check.
#
set -eu

build=${1:-build}
here=$(cd "$(dirname "$0")/.." && pwd)
bin=$(cd "$build/bin" && pwd)
ccbroker="$bin/ccbroker"
ccagent="$bin/ccagent"
PY=/usr/bin/python3

dir=$(mktemp -d "${TMPDIR:-/tmp}/ccdemo-XXXXXX")
pids=""
AREA=E08000035
PNC=2004/0012345D

# stop PID: SIGTERM, then SIGKILL if it has not gone within 5 s.
stop()
{
	kill "$1" 2>/dev/null || return 0
	n=0
	while kill -0 "$1" 2>/dev/null && [ "$n" -lt 50 ]; do
		sleep 0.1
		n=$((n + 1))
	done
	if kill -0 "$1" 2>/dev/null; then
		echo "demo: process $1 did not stop; killing it" >&2
		kill -9 "$1" 2>/dev/null || true
	fi
	wait "$1" 2>/dev/null || true
}

cleanup()
{
	for p in $pids; do
		stop "$p"
	done
	if [ "${DEMO_KEEP:-}" = 1 ]; then
		echo "(kept $dir)"
	else
		rm -rf "$dir"
	fi
}
trap cleanup EXIT INT TERM

say()
{
	printf '%s\n' "$*"
}

step()
{
	printf '\n== %s\n' "$*"
}

die()
{
	printf 'demo: %s\n' "$*" >&2
	exit 1
}

# wait_for N GLOB: until N files match (10 s at most).
wait_for()
{
	n=$1
	shift
	i=0
	while [ "$i" -lt 100 ]; do
		# shellcheck disable=SC2086
		c=$(ls -d $1 2>/dev/null | wc -l)
		[ "$c" -ge "$n" ] && return 0
		sleep 0.1
		i=$((i + 1))
	done
	die "timed out waiting for $n of $1"
}

now()
{
	date -u -d "${1:-now}" +%Y-%m-%dT%H:%M:%SZ
}

# ---------------------------------------------------------------- the set-up
step "Setting up an example partnership in $dir"
"$here/certs-example/mkpartnership.sh" "$dir/pki" >/dev/null
port=$($PY -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
cat >"$dir/broker.conf" <<EOF
[broker]
bind = tcp://127.0.0.1:$port
data = $dir/broker-data
certificate = $dir/pki/broker.crt
key = $dir/pki/broker.key
ca = $dir/pki/ca.crt
crl = $dir/pki/ca.crl
agencies = $dir/pki/agencies
map_size_mb = 64

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
chmod 600 "$dir"/pki/*.key "$dir"/pki/keys/*.key
"$ccbroker" init -c "$dir/broker.conf" >/dev/null
"$ccbroker" run -c "$dir/broker.conf" >"$dir/broker.log" 2>&1 &
pids="$pids $!"
say "broker listening on 127.0.0.1:$port"

# agent ID SUBSCRIBE: write agent.conf and start `ccagent run`.
agent()
{
	mkdir -p "$dir/$1"
	cat >"$dir/$1/agent.conf" <<EOF
[agent]
broker = tcp://127.0.0.1:$port
broker_certificate = $dir/pki/broker.crt
ca = $dir/pki/ca.crt
crl = $dir/pki/ca.crl
certificate = $dir/pki/agencies/$1.crt
key = $dir/pki/keys/$1.key
data = $dir/$1/data
spool = $dir/$1/spool
subscribe = $2
areas = $AREA
EOF
	"$ccagent" run -c "$dir/$1/agent.conf" >>"$dir/$1/agent.log" 2>&1 &
	eval "pid_$(echo "$1" | tr '.-' '__')=$!"
	pids="$pids $!"
}

agent carat.hmp-leeds ""
agent cjit.leeds "release-plan"
agent probation.leeds "release-plan, housing-status"
agent housing.leeds-hostels "release-plan"
agent la.leeds "release-plan, housing-status"
for a in carat.hmp-leeds cjit.leeds probation.leeds housing.leeds-hostels \
    la.leeds; do
	wait_for 1 "$dir/$a/spool/in/"
done
sleep 1
say "five agencies connected: HMP Leeds CARAT, Leeds CJIT, Leeds probation,"
say "Leeds Hostels (housing provider) and Leeds City Council housing options"

# consent AGENCY OP FILE: record a consent event, print "cid version".
consent()
{
	"$ccagent" consent "$2" -n -c "$dir/$1/agent.conf" "$3"
}

# publish AGENCY FILE: send one record, print its mid.
publish()
{
	"$ccagent" publish -n -c "$dir/$1/agent.conf" "$2"
}

# ---------------------------------------------------------------- consent
step "1. In HMP Leeds, the CARAT worker records the client's consent"
cat >"$dir/consent-care.json" <<EOF
{"subject": {"pnc": "$PNC", "noms": "A1234BC"},
 "recipients": ["cjit.leeds", "housing.leeds-hostels"],
 "purposes": ["continuity-of-care", "housing-support"],
 "categories": ["identity", "cj-identifiers", "criminal-justice",
   "treatment-summary", "treatment-clinical", "housing", "housing-address",
   "contacts"],
 "deny": [{"recipients": ["housing.leeds-hostels"],
   "categories": ["treatment-clinical"]}],
 "explicit": true,
 "valid_from": "$(now '-1 hour')", "valid_until": "$(now '+12 months')",
 "evidence": {"method": "written", "form": "DIP consent to share v3",
   "worker": "Pat Carat", "captured": "$(now)",
   "reference": "CARAT case file, consent section"}}
EOF
cat >"$dir/consent-probation.json" <<EOF
{"subject": {"pnc": "$PNC", "noms": "A1234BC"},
 "recipients": ["probation.leeds"],
 "purposes": ["continuity-of-care", "housing-support"],
 "categories": ["identity", "cj-identifiers", "criminal-justice",
   "housing", "housing-address", "contacts"],
 "valid_from": "$(now '-1 hour')", "valid_until": "$(now '+12 months')",
 "evidence": {"method": "written", "form": "DIP consent to share v3",
   "worker": "Pat Carat", "captured": "$(now)",
   "reference": "CARAT case file, consent section"}}
EOF
set -- $(consent carat.hmp-leeds grant "$dir/consent-care.json")
cid_care=$1
say "consent $cid_care v$2: CJIT and Leeds Hostels, for continuity of care"
say "  and housing support; treatment details given explicitly, but never"
say "  to the hostel (a deny provision)"
set -- $(consent carat.hmp-leeds grant "$dir/consent-probation.json")
cid_prob=$1
say "consent $cid_prob v$2: probation, without treatment details"
say "the council's housing team is not named: it gets nothing"

# ---------------------------------------------------------------- records
step "2. CARAT's case system drops a release plan into the agent's out/ folder"
cat >"$dir/release-plan.json" <<EOF
{"type": "release-plan", "purpose": "continuity-of-care",
 "subject": {"pnc": "$PNC", "noms": "A1234BC"}, "area": "$AREA",
 "created": "$(now)",
 "body": {"person": {"family_name": "Example", "given_name": "Alex",
     "dob": "1985-03-14", "sex": "M"},
   "establishment": "LEI", "release_date": "$(date -u -d '+3 weeks' +%Y-%m-%d)",
   "release_type": "licence", "on_licence": true,
   "in_treatment": true, "treatment_modality": "prescribing",
   "overdose_risk_briefed": true,
   "substitute_medication": "methadone", "dose_mg": 60,
   "primary_substance": "heroin",
   "accommodation_need": "nfa-urgent", "accommodation_on_release": "hostel",
   "housing_actions": ["HACS referral made to council housing options"],
   "release_address": {"line1": "Example House", "town": "Leeds",
     "postcode": "LS2 2BB"},
   "offender_manager": {"name": "Sam Officer", "agency": "probation.leeds",
     "phone": "0113 000 0000"},
   "notes": "Anxious about release; wants to stay out of the city centre."}}
EOF
cp "$dir/release-plan.json" "$dir/carat.hmp-leeds/spool/release-plan.tmp"
mv "$dir/carat.hmp-leeds/spool/release-plan.tmp" \
    "$dir/carat.hmp-leeds/spool/out/release-plan.json"
wait_for 1 "$dir/carat.hmp-leeds/spool/sent/release-plan.json"
wait_for 1 "$dir/cjit.leeds/spool/in/*.json"
wait_for 1 "$dir/probation.leeds/spool/in/*.json"
wait_for 1 "$dir/housing.leeds-hostels/spool/in/*.json"
sleep 0.5
say "accepted by the broker and moved to sent/"

step "3. CARAT hands the case over to Leeds CJIT (a direct message)"
cat >"$dir/handover.json" <<EOF
{"type": "handover", "purpose": "continuity-of-care",
 "subject": {"pnc": "$PNC"}, "area": "$AREA", "to": ["cjit.leeds"],
 "created": "$(now)",
 "body": {"person": {"family_name": "Example", "given_name": "Alex"},
   "establishment": "LEI", "handover_status": "offered",
   "injecting_status": "previous", "primary_substance": "heroin",
   "substitute_medication": "methadone", "dose_mg": 60,
   "carat_worker": {"name": "Pat Carat", "agency": "carat.hmp-leeds"}}}
EOF
publish carat.hmp-leeds "$dir/handover.json" >/dev/null
wait_for 2 "$dir/cjit.leeds/spool/in/*.json"

step "4. Leeds CJIT refers the client to Leeds Hostels for supported housing"
cat >"$dir/referral.json" <<EOF
{"type": "referral", "purpose": "housing-support",
 "subject": {"pnc": "$PNC"}, "area": "$AREA",
 "to": ["housing.leeds-hostels"], "created": "$(now)",
 "body": {"person": {"family_name": "Example", "given_name": "Alex"},
   "referral_service": "supported-housing", "accommodation_need": "nfa-urgent",
   "support_needs": ["substance-misuse"], "in_treatment": true,
   "risk_flags": {"arson": false, "sexual_offence": false, "violence": false},
   "referrer": {"name": "Jo Keyworker", "agency": "cjit.leeds"},
   "notes": "Needs a ground-floor room near the CJIT."}}
EOF
publish cjit.leeds "$dir/referral.json" >/dev/null
wait_for 2 "$dir/housing.leeds-hostels/spool/in/*.json"

step "5. Leeds Hostels reports the client has moved in"
cat >"$dir/housing-status.json" <<EOF
{"type": "housing-status", "purpose": "housing-support",
 "subject": {"pnc": "$PNC"}, "area": "$AREA", "created": "$(now)",
 "body": {"effective_date": "$(date -u +%Y-%m-%d)",
   "accommodation_type": "hostel", "settled_status": "unsettled",
   "change_reason": "moved-in",
   "address": {"line1": "Example House", "town": "Leeds",
     "postcode": "LS2 2BB"}}}
EOF
publish housing.leeds-hostels "$dir/housing-status.json" >/dev/null
wait_for 2 "$dir/probation.leeds/spool/in/*.json"
sleep 0.5

# ---------------------------------------------------------------- withdrawal
step "6. Probation's system is down; the hostel sends another update"
stop "$pid_probation_leeds"
sed -e 's/"moved-in"/"other"/' -e 's/"hostel"/"supported"/' \
    -e 's/"unsettled"/"settled"/' "$dir/housing-status.json" \
    >"$dir/housing-status-2.json"
mid_queued=$(publish housing.leeds-hostels "$dir/housing-status-2.json")
say "update $mid_queued waits in probation's queue"

step "7. The client withdraws consent for probation before it is delivered"
cat >"$dir/withdraw.json" <<EOF
{"cid": "$cid_prob", "captured": "$(now)", "worker": "Jo Keyworker",
 "reason": "client asked CJIT to stop sharing with probation"}
EOF
set -- $(consent cjit.leeds withdraw "$dir/withdraw.json")
say "consent $1 is now version $2 (withdrawn), recorded by Leeds CJIT"
wait_for 1 "$dir/housing.leeds-hostels/spool/receipts/$mid_queued.probation.leeds.purged.json"
agent probation.leeds "release-plan, housing-status"
# Probation had taken records under that consent: it is told (a notice).
wait_for 1 "$dir/probation.leeds/spool/notices/*.json"
sleep 2

# ---------------------------------------------------------------- results
step "What each agency received"
$PY - "$dir" "$mid_queued" <<'EOF'
import glob, json, os, sys
d, queued = sys.argv[1], sys.argv[2]
names = {"carat.hmp-leeds": "HMP Leeds CARAT", "cjit.leeds": "Leeds CJIT",
         "probation.leeds": "Leeds probation",
         "housing.leeds-hostels": "Leeds Hostels",
         "la.leeds": "Leeds City Council housing"}
for a, n in names.items():
    recs = sorted((json.load(open(f)) for f in glob.glob(f"{d}/{a}/spool/in/*.json")),
                  key=lambda r: r.get("created", ""))
    print(f"{n} ({a}): {len(recs)} record(s)")
    for r in recs:
        w = ", ".join(r.get("withheld_categories", [])) or "nothing"
        fields = ", ".join(sorted(r.get("body", {}))) or "-"
        print(f"  RECEIVED {a} {r['type']} from {r['from']} on consent "
              f"v{r['consent']['version']}")
        print(f"    fields: {fields}")
        print(f"    withheld categories: {w}")
        if r["mid"] == queued:
            print("  ERROR: a purged record was delivered")
print()
print("What agencies were told after the fact (notices/)")
for a in names:
    for f in sorted(glob.glob(f"{d}/{a}/spool/notices/*.json")):
        n = json.load(open(f))
        cs = ", ".join(f"{c['cid'][:8]} v{c['version']}"
                       for c in n.get("consents", []))
        print(f"  NOTICE {a} {n['kind']}: consent {cs}, "
              f"{len(n.get('mids', []))} record(s) it holds")
print()
print("What was withheld from whom, and why (receipts to the senders)")
for a in names:
    for f in sorted(glob.glob(f"{d}/{a}/spool/receipts/*.json")):
        r = json.load(open(f))
        if r["state"] in ("withheld", "purged", "expired"):
            print(f"  {r['state'].upper()} {r['agency']} from {a}: "
                  f"{r.get('reason', '')}")
EOF

step "Tracking the release plan (ccagent track)"
mid_rp=$($PY -c 'import json,sys; print(json.load(open(sys.argv[1]))["mid"])' \
    "$dir/carat.hmp-leeds/spool/sent/release-plan.json")
"$ccagent" track -c "$dir/carat.hmp-leeds/agent.conf" "$mid_rp"

step "The information-governance lead verifies the audit trail"
"$ccbroker" audit verify -c "$dir/broker.conf"

step "Subject access request for PNC 04/12345D (summary)"
# The identifiers go in a file or on standard input, never on the command
# line, where ps and shell history would keep them.
printf '# subject access request\npnc=04/12345D\n' >"$dir/sar.request"
"$ccbroker" audit subject -c "$dir/broker.conf" "$dir/sar.request" \
    >"$dir/sar.json"
$PY - "$dir/sar.json" <<'EOF'
import json, sys
r = json.load(open(sys.argv[1]))
print(f"subject {r['subject']}: {len(r['disclosures'])} disclosures, "
      f"{len(r['withheld'])} withheld, {len(r['consents'])} consents")
for l in r["linked"]:
    via = ", ".join(f"{k} {v}" for k, v in l["via"].items())
    print(f"  linked {l['scheme']} {l['value'] or '(pseudonym only)'} "
          f"via {via}")
for x in r["disclosures"]:
    print(f"  disclosed {x['type']} {x['sender']} -> {x['recipient']}: "
          f"{', '.join(x['categories'])}")
for x in r["withheld"]:
    print(f"  withheld {x['type']} {x['sender']} -> {x['recipient']}: {x['reason']}")
for c in r["consents"]:
    print(f"  consent {c['cid']} {c['state']} ({len(c['history'])} versions), "
          f"recipients {', '.join(c['recipients'] or [])}")
EOF
"$ccbroker" audit subject -c "$dir/broker.conf" --format text \
    <"$dir/sar.request" >"$dir/sar.txt"
echo "The report for the client, in plain English ($dir/sar.txt), begins:"
sed -n '1,12p' "$dir/sar.txt"
step "Done: stopping the broker and the five agents"
