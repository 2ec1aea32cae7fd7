#!/usr/bin/python3
"""Write the golden frames of the agent's requests (run once; the outputs
are committed and tests/unit/test_cc_agent.c reads them without python).

agent-OP.json   the op's fields as a case system hands them to the agent
                (ack and subscribe: the fields the library fills itself)
agent-OP.mp     the exact frame libccagent must send for it: v and op
                first, then the fields in the file's order

Packed by python3-msgpack, an encoder independent of msgpack-c.  hello has
no golden frame: it carries CC_AGENT_VERSION, which changes by design.
"""
import collections
import glob
import json
import os

import msgpack

HERE = os.path.dirname(os.path.abspath(__file__))

for src in sorted(glob.glob(os.path.join(HERE, "agent-*.json"))):
    op = os.path.basename(src)[len("agent-"):-len(".json")]
    with open(src, encoding="utf-8") as f:
        fields = json.load(f, object_pairs_hook=collections.OrderedDict)
    frame = collections.OrderedDict([("v", 1), ("op", op)])
    frame.update(fields)
    with open(src[:-len(".json")] + ".mp", "wb") as f:
        f.write(msgpack.packb(frame, use_bin_type=True))
