#!/usr/bin/env python3
"""Writes the output of vectors-gen (main.go beside this file) into spec/vectors: the
netrpc_sessions of rpc-go-sessions.json and the go:net/rpc tests of streams.json, keeping each
file's layout. Usage: GO111MODULE=off go run interop/go/vectors-gen/main.go | python3 interop/go/vectors-gen/update.py

codec/tests/go_interop.rs checks that the stored vectors are what the generator produces, and
runs this script itself when UPDATE_VECTORS=1."""
import json
import pathlib
import sys

root = pathlib.Path(__file__).resolve().parents[3]
generated = json.load(sys.stdin)

path = root / "spec/vectors/rpc-go-sessions.json"
sessions = json.loads(path.read_text())
sessions["netrpc_sessions"] = generated["netrpc_sessions"]
path.write_text(json.dumps(sessions, indent=2, ensure_ascii=False) + "\n")


def test_text(t):
    """One test of streams.json in that file's layout: a member per line, lists of strings on
    one line, each frame on one line when it fits in 100 columns."""
    lines = ["    {"]
    members = []
    for key, value in t.items():
        if key == "frames":
            frames = []
            for f in value:
                one = "        " + json.dumps(f, ensure_ascii=False)
                if len(one) <= 100:
                    frames.append(one)
                else:
                    frames.append(
                        "        {\n"
                        + ",\n".join(
                            "          " + json.dumps(k) + ": " + json.dumps(v, ensure_ascii=False)
                            for k, v in f.items()
                        )
                        + "\n        }"
                    )
            members.append('      "frames": [\n' + ",\n".join(frames) + "\n      ]"
                           if frames else '      "frames": []')
        else:
            members.append("      " + json.dumps(key) + ": " + json.dumps(value, ensure_ascii=False))
    lines.append(",\n".join(members))
    lines.append("    }")
    return "\n".join(lines)


path = root / "spec/vectors/streams.json"
text = path.read_text()
tests = json.loads(text)["tests"]
for new in generated["stream_tests"]:
    old = next(t for t in tests if t["tcId"] == new["tcId"])
    old_text = test_text(old)
    if old_text not in text:
        sys.exit(f"streams.json: test {new['tcId']} is not laid out as this script writes it")
    text = text.replace(old_text, test_text(new))
json.loads(text)
path.write_text(text)
