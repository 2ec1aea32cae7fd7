#!/usr/bin/python3
"""Write the golden msgpack frames of tests/files/ (run once; the outputs are
committed and tests/unit/test_proto.c reads them without python).

valid-*.mp      canonical frames: decode, and re-encode byte for byte
truncated-*.mp  valid frames cut short
corrupt-*.mp    frames no decoder may accept: each is `malformed`

Packed by python3-msgpack, an encoder independent of msgpack-c, so the
tests see frames as a third-party client would send them.
"""
import os
import msgpack

HERE = os.path.dirname(os.path.abspath(__file__))
MID = "6f1c2d3e-4a5b-4c6d-8e9f-0a1b2c3d4e5f"
CID = "d4c3b2a1-0f9e-4d8c-b7a6-958473625140"
PERSON = {"family_name": "Testperson", "given_name": "Alex", "dob": "1985-03-14", "sex": "M"}


def publish(rtype, purpose, body, **extra):
    m = {"v": 1, "op": "publish", "mid": MID, "type": rtype, "purpose": purpose,
         "subject": {"pnc": "2004/0012345D"}, "area": "E08000035",
         "created": "2026-05-01T09:00:00Z", "body": body}
    m.update(extra)
    return m


VALID = {
    "release-plan": publish("release-plan", "continuity-of-care", {
        "person": PERSON, "establishment": "LEI", "release_date": "2026-12-20",
        "release_type": "licence", "on_licence": True, "in_treatment": True,
        "substitute_medication": "methadone", "dose_mg": 60,
        "housing_actions": ["HACS referral made"], "notes": "Wants to stay out of the city centre."}),
    "handover": publish("handover", "continuity-of-care", {
        "person": PERSON, "handover_status": "offered", "dose_mg": 12.5,
        "prison_treatment": [{"modality": "detox", "start": "2026-01-05", "end": "2026-02-05"}]},
        to=["cjit.leeds"]),
    "referral": publish("referral", "housing-support", {
        "person": PERSON, "referral_service": "supported-housing",
        "household": {"adults": 1, "dependants": 2}, "support_needs": ["debt", "mental-health"],
        "risk_flags": {"arson": False, "violence": True}}, to=["housing.leeds-hostels"]),
    "housing-status": publish("housing-status", "housing-support", {
        "effective_date": "2026-05-02", "accommodation_type": "rough-sleeping",
        "settled_status": "homeless", "change_reason": "evicted"}),
    "consent-grant": {
        "v": 1, "op": "consent-grant", "cid": CID, "subject": {"noms": "A1234BC"},
        "recipients": ["cjit.leeds"], "purposes": ["continuity-of-care"],
        "categories": ["identity", "narrative"], "deny": [], "explicit": True,
        "valid_from": "2026-05-01T00:00:00Z", "valid_until": "2027-05-01T00:00:00Z",
        "evidence": {"method": "written", "form": "DIP consent v3", "worker": "J Worker",
                     "captured": "2026-05-01T09:00:00Z", "reference": "case file 12"}},
    "hello": {"v": 1, "op": "hello", "agent": "acceptance/1", "receive": True},
    "deliver": {"v": 1, "op": "deliver", "dseq": 70000, "mid": MID, "type": "release-plan",
                "from": "carat.hmp-leeds", "purpose": "continuity-of-care", "subject": {},
                "area": "E08000035", "created": "2026-05-01T09:00:00Z",
                "body": {"release_date": "2026-12-20"}, "consent": {"cid": CID, "version": 3},
                "withheld_categories": ["identity", "cj-identifiers"]},
    "error": {"v": 1, "op": "error", "re": MID, "code": "invalid-field",
              "field": "body.release_date", "detail": "not a date YYYY-MM-DD"},
}


def pack(m):
    return msgpack.packb(m, use_bin_type=True)


def write(name, data):
    with open(os.path.join(HERE, name), "wb") as f:
        f.write(data)


def nested(depth):
    """A hello whose agent is `depth` - 1 lists deep (the map is depth 1)."""
    v = "x"
    for _ in range(depth - 1):
        v = [v]
    return pack({"v": 1, "op": "hello", "agent": v})


def main():
    for name, m in VALID.items():
        write(f"valid-{name}.mp", pack(m))
    rp = pack(VALID["release-plan"])
    write("truncated-release-plan-half.mp", rp[: len(rp) // 2])
    write("truncated-release-plan-last-byte.mp", rp[:-1])
    write("truncated-consent-grant.mp", pack(VALID["consent-grant"])[:40])
    write("truncated-header-only.mp", b"\x89")
    corrupt = {
        "reserved-byte": b"\xc1\xff\x00garbage",
        "top-level-array": pack([1, 2, 3]),
        "trailing-bytes": pack(VALID["hello"]) + b"\x00",
        "two-messages": pack(VALID["hello"]) * 2,
        "integer-key": pack({"v": 1, "op": "ack", 1: 2}),
        "duplicate-key": b"\x83\xa1v\x01\xa2op\xa3ack\xa1v\x01",
        "array32-4-billion": b"\xdd\xff\xff\xff\xff" + b"\x00" * 16,
        "map32-4-billion": b"\x81\xa1v\xdf\xff\xff\xff\xff",
        "str32-overlong": b"\x81\xa1v\xdb\x7f\xff\xff\xff" + b"a" * 16,
        "nested-9-deep": nested(9),
        "nested-100-deep": nested(100),
    }
    for name, data in corrupt.items():
        write(f"corrupt-{name}.mp", data)


if __name__ == "__main__":
    main()
