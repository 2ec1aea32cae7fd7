#!/usr/bin/python3
"""Make tests/files/store-format2/: a broker store written by a ccbroker of
store format 2 (before integrity tags), for test_upgrade.

usage: CONFORMANCE=DIR make-store-format2.py OLD_PROJECT_DIR OUT_DIR
OLD_PROJECT_DIR holds a built ccbroker of format 2 (e.g. a worktree of commit
2bc70dc, `make`). Uses the conformance suite's client (ccwire.py). The story,
about three clients, the broker's retention at ten years so nothing expires:
  G1  carat.hmp-leeds grants cjit.leeds and probation.leeds, PNC_A, 24 months
  G2  carat.hmp-leeds grants cjit.leeds, PNC_B; then withdraws it
  R   carat.hmp-leeds records a refusal, PNC_C
  P1  a release plan about PNC_A: probation receives and acks it, cjit.leeds
      is offline and it waits in its queue
  P2  a handover about PNC_B to cjit.leeds: withheld, no-consent
"""
import os, shutil, sys, time
sys.path.insert(0, os.environ.get("CONFORMANCE", os.path.join(os.path.dirname(os.path.abspath(__file__)), "../../../shared/conformance")))
from ccwire import *  # noqa

old, out = sys.argv[1], sys.argv[2]
e = Env(old)
e.b.stop()
conf = open(e.b.conf).read().replace("retention_days = 30", "retention_days = 3650")
open(e.b.conf, "w").write(conf)
e.b.start()
carat = e.agent("carat.hmp-leeds")
cjit = e.agent("cjit.leeds")
prob = e.agent("probation.leeds")
for a in (cjit, prob):
    assert a.call({"op": "subscribe", "types": ["release-plan"], "areas": [AREA]}, ["subscribed"])["op"] == "subscribed"
g1 = grant(["cjit.leeds", "probation.leeds"], BASIC, pnc=PNC_A, valid_until=now(729))
assert carat.call(g1, ["consent-recorded"])["op"] == "consent-recorded"
g2 = grant(["cjit.leeds"], BASIC, pnc=PNC_B, valid_until=now(729))
assert carat.call(g2, ["consent-recorded"])["op"] == "consent-recorded"
w = carat.call({"op": "consent-withdraw", "cid": g2["cid"], "captured": now(), "worker": "J Worker",
                "reason": "client asked"}, ["consent-recorded"])
assert w["op"] == "consent-recorded" and w["version"] == 2, w
r = {"op": "consent-refuse", "cid": str(uuid.uuid4()), "subject": {"pnc": PNC_C}, "captured": now(),
     "worker": "J Worker", "evidence": {"method": "verbal-witnessed", "form": "DIP consent v3",
     "worker": "J Worker", "captured": now(), "reference": "case file 13"}}
assert carat.call(r, ["consent-recorded"])["op"] == "consent-recorded"
cjit.close()
time.sleep(0.5)
p1 = release_plan(pnc=PNC_A)
assert carat.call(p1, ["accepted"])["op"] == "accepted"
d = prob.deliveries()
assert len(d) == 1 and d[0]["mid"] == p1["mid"], d
p2 = release_plan(pnc=PNC_B, op="publish", type="handover", to=["cjit.leeds"])
p2["body"] = {"person": person(), "establishment": "LEI", "release_date": "2026-12-20",
              "handover_status": "offered"}
assert carat.call(p2, ["accepted"])["op"] == "accepted"
time.sleep(1.0)
e.close()
os.makedirs(out, exist_ok=True)
for f in ("data.mdb", "key"):
    shutil.copy(f"{e.tmp}/data/{f}", f"{out}/{f}")
with open(f"{out}/README", "w") as f:
    f.write(f"""A store of format 2, made by tests/files/make-store-format2.py with the
ccbroker of commit 2bc70dc, for test_upgrade. Not a secret: the key here
seals nothing but this example.
G1 {g1['cid']} carat.hmp-leeds grants cjit.leeds, probation.leeds, PNC {PNC_A}, until {g1['valid_until']}
G2 {g2['cid']} carat.hmp-leeds grants cjit.leeds, PNC {PNC_B}; withdrawn (version 2)
R  {r['cid']} refusal, PNC {PNC_C}
P1 {p1['mid']} release plan, PNC {PNC_A}: probation.leeds delivered, cjit.leeds queued
P2 {p2['mid']} handover, PNC {PNC_B}, to cjit.leeds: withheld no-consent
""")
print(open(f"{out}/README").read())
