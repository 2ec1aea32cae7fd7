#!/usr/bin/python3
"""Make tests/files/store-formatN/: a broker store written by a ccbroker of
store format N (3 or 4: message headers without their record's hash), for
test_upgrade.

usage: CONFORMANCE=DIR make-store-nohash.py N OLD_PROJECT_DIR OUT_DIR
OLD_PROJECT_DIR holds a built ccbroker of format N: a worktree of commit
f43778c (format 3) or 631f1e1 (format 4, the last before 5), `make`. The
README written names the commit OLD_PROJECT_DIR is at. Uses the
conformance suite's client (ccwire.py; Debian's python3-zmq,
python3-msgpack and python3-cryptography). The story, the broker's
retention at ten years so nothing expires:
  G1  carat.hmp-leeds grants cjit.leeds and probation.leeds, PNC_A, 24 months
  P1  a release plan about PNC_A: probation receives and acks it, cjit.leeds
      is offline and it waits in its queue (the payload is held)
  P2  a release plan about PNC_A to probation.leeds alone, received and
      acked (the payload released: only the header is left)
  P3  a handover about PNC_B to cjit.leeds: withheld, no-consent (no payload)
Each publish is written beside the store as P1.json ... P3.json, the frame
as sent (op, mid, created and all), so that the test can send it again.
"""
import json, os, shutil, subprocess, sys, time
sys.path.insert(0, os.environ.get("CONFORMANCE", os.path.join(os.path.dirname(os.path.abspath(__file__)), "../../../shared/conformance")))
from ccwire import *  # noqa

fmt, old, out = int(sys.argv[1]), sys.argv[2], sys.argv[3]
commit = subprocess.run(["git", "-C", old, "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                        check=True).stdout.strip()
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
cjit.close()
time.sleep(0.5)
p1 = release_plan(pnc=PNC_A, name="Held")
assert carat.call(p1, ["accepted"])["op"] == "accepted"
d = prob.deliveries()
assert len(d) == 1 and d[0]["mid"] == p1["mid"], d
p2 = release_plan(pnc=PNC_A, name="Released", to=["probation.leeds"])
assert carat.call(p2, ["accepted"])["op"] == "accepted"
d = prob.deliveries()
assert len(d) == 1 and d[0]["mid"] == p2["mid"], d
p3 = release_plan(pnc=PNC_B, op="publish", type="handover", to=["cjit.leeds"])
p3["body"] = {"person": person(), "establishment": "LEI", "release_date": "2026-12-20",
              "handover_status": "offered"}
assert carat.call(p3, ["accepted"])["op"] == "accepted"
time.sleep(1.0)
# Both acks are on disk and P2's payload released before the store is copied.
for p, state in ((p1, "delivered"), (p2, "delivered")):
    s = carat.call({"op": "track", "mid": p["mid"]}, ["status"])
    st = {r["agency"]: r["state"] for r in s["recipients"]}
    assert st.get("probation.leeds") == state, s
e.close()
os.makedirs(out, exist_ok=True)
for f in ("data.mdb", "key"):
    shutil.copy(f"{e.tmp}/data/{f}", f"{out}/{f}")
for n, p in (("P1", p1), ("P2", p2), ("P3", p3)):
    with open(f"{out}/{n}.json", "w") as f:
        json.dump(p, f, indent=2)
        f.write("\n")
with open(f"{out}/README", "w") as f:
    f.write(f"""A store of format {fmt}, made by tests/files/make-store-nohash.py with the
ccbroker of commit {commit}, for test_upgrade. Not a secret: the key here
seals nothing but this example. P1.json ... P3.json are the publishes as
sent.
G1 {g1['cid']} carat.hmp-leeds grants cjit.leeds, probation.leeds, PNC {PNC_A}, until {g1['valid_until']}
P1 {p1['mid']} release plan, PNC {PNC_A}: probation.leeds delivered, cjit.leeds queued (payload held)
P2 {p2['mid']} release plan, PNC {PNC_A}, to probation.leeds: delivered (payload released)
P3 {p3['mid']} handover, PNC {PNC_B}, to cjit.leeds: withheld no-consent
""")
print(open(f"{out}/README").read())
