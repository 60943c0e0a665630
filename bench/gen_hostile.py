#!/usr/bin/python3
"""Generate a hostile workflow file of a given size, for memory and time checks.

Each shape repeats one small unit (an empty map in a list, a bare key, a
one-letter argument, ...) that an older loader turned into many times its
size in memory or time (docs/performance.md, "Hostile input").

The loader allows one YAML node per TLM_SPEC_NODE_BYTES of the file, a map
in a list counting as TLM_SPEC_ITEM_MAP_NODES (include/telemachy/spec.h).  By
default each unit is padded with spaces to the bytes its nodes are allowed,
which gives the densest file the loader accepts: the most memory it can be
made to spend.  With --dense the units are not padded: the file is over the
limit and must be refused early, cheaply.

  gen_hostile.py [--dense] [--node-bytes N] [--item-map-nodes M] SHAPE SIZE OUTPUT
  gen_hostile.py --list

SIZE in bytes, or with a k/m suffix; the output is at most SIZE bytes and
depends only on the arguments.  Standard library only.
"""

import argparse
import sys

HEAD = "apiVersion: telemachy/v1\nmetadata:\n  name: hostile\n"
AGENT = "agents:\n  - name: a\n    program: none\n"
TEAM = "teams:\n  - name: t\n    agents: [a]\n"
TASK = "    tasks:\n      - subject: s\n        description: d\n"

# shape: (prefix, unit, suffix, nodes per unit with a map in a list as "M")
# A "%x" in the unit is replaced by the unit's number, to make it distinct.
SHAPES = {
    # A top-level flow list of empty maps (issue 11: 3.4 GB for 64 MiB).
    "flow-maps": ("[", "{},", "{}]\n", "M"),
    # Empty maps as tasks: each one would be a model entry.
    "tasks": (HEAD + AGENT + TEAM + "    tasks: [", "{},", "{}]\n", "M"),
    # Explicit keys with no text: two nodes in two bytes.
    "keys": ("", "?\n", "", 2),
    # A flow map of bare keys, every one a duplicate: two nodes in two bytes.
    "flow-keys": ("{", "a,", "a}\n", 2),
    # One-letter scalars in a list.
    "scalars": ("[", "a,", "a]\n", 1),
    # Distinct metadata labels, each checked for duplicates.
    "labels": ("apiVersion: telemachy/v1\nmetadata: {name: hostile, ", "l%x,", "l}\n", 2),
    # Distinct environment variables of one agent.
    "env": (HEAD + AGENT + "    env: {", "E%x: 1,", "E: 1}\n", 2),
    # A list item per line, block style.
    "block-list": ("", "-\n", "", 1),
    # Program arguments of one agent.
    "args": (HEAD + AGENT + "    args: [", "a,", "a]\n", 1),
    # Unknown dependencies of one task, one error each.
    "deps": (HEAD + AGENT + TEAM + TASK + "        blocked_by: [", "x,", "x]\n", 1),
    # Unknown team members, one error each.
    "members": (HEAD + AGENT + "teams:\n  - name: t\n    agents: [", "b,", "b]\n", 1),
    # Distinct valid agents.
    "agents": (HEAD + "agents:\n", "  - {name: a%x}\n", "", ("M", 2)),
    # Distinct valid tasks, as short as they can be.
    "valid-tasks": (HEAD + AGENT + TEAM + "    tasks:\n",
                    "      - {subject: s%x, description: d}\n", "", ("M", 4)),
    # Unknown dependencies close to 1,999 long subjects (a pool of at most 2,000): each asks for a
    # "did you mean" among them.
    "hints": (HEAD + AGENT + TEAM + "    tasks:\n" + "".join(
        "      - {subject: %s, description: d}\n" % ("subject-%04d-" % i).ljust(60, "s")
        for i in range(1999)) + "      - subject: s\n        description: d\n"
              "        blocked_by: [", "%s,", "x]\n", 1),
    # A task whose subject is half the file, with unknown dependencies: each
    # error is about that task.
    "long-subject": (lambda size: HEAD + AGENT + TEAM + "    tasks:\n      - subject: "
                     + "s" * (size // 2) + "\n        description: d\n        blocked_by: [",
                     "x,", "x]\n", 1),
    # One double-quoted scalar of escapes that each expand (2 bytes -> 3).
    "escapes": (HEAD + "  description: \"", "\\L", "\"\n", 0),
}


def parse_size(text):
    mult = 1
    if text[-1:] in ("k", "K"):
        mult, text = 1024, text[:-1]
    elif text[-1:] in ("m", "M"):
        mult, text = 1 << 20, text[:-1]
    return int(text) * mult


def weight(nodes, item_map):
    if nodes == "M":
        return item_map
    if isinstance(nodes, tuple):
        return sum(weight(n, item_map) for n in nodes)
    return nodes


def pad(unit, width):
    """unit widened to width bytes with spaces, before a final newline."""
    if len(unit) >= width:
        return unit
    spaces = " " * (width - len(unit))
    return unit[:-1] + spaces + "\n" if unit.endswith("\n") else unit + spaces


def generate(shape, size, node_bytes, item_map, dense):
    prefix, unit, suffix, nodes = SHAPES[shape]
    if callable(prefix):
        prefix = prefix(size)
    width = 0 if dense else weight(nodes, item_map) * node_bytes
    parts = [prefix]
    # Room for the nodes of the prefix and suffix (a few dozen).
    used = len(prefix) + len(suffix) + 64 * max(node_bytes, 1)
    i = 0
    while True:
        if "%x" in unit:
            item = unit.replace("%x", "%x" % i)
        elif "%s" in unit:  # a 60-byte name near the "hints" subjects
            item = unit.replace("%s", ("subject-%04d-" % (i % 1999)).ljust(59, "s") + "t")
        else:
            item = unit
        item = pad(item, width)
        if used + len(item) > size and i > 0:
            break
        parts.append(item)
        used += len(item)
        i += 1
    parts.append(suffix)
    if not dense:
        # The reserve, as blank lines: the node allowance is from the size.
        parts.append("\n" * max(0, size - used + 64 * max(node_bytes, 1)))
    return "".join(parts)


def main(argv):
    p = argparse.ArgumentParser(description="Generate a hostile workflow file.")
    p.add_argument("--list", action="store_true", help="list the shapes")
    p.add_argument("--dense", action="store_true",
                   help="no padding: over the node limit, to be refused early")
    p.add_argument("--node-bytes", type=int, default=8, metavar="N",
                   help="bytes of file allowed per node (TLM_SPEC_NODE_BYTES, 8)")
    p.add_argument("--item-map-nodes", type=int, default=4, metavar="M",
                   help="nodes a map in a list counts as (TLM_SPEC_ITEM_MAP_NODES, 4)")
    p.add_argument("shape", nargs="?", choices=sorted(SHAPES))
    p.add_argument("size", nargs="?")
    p.add_argument("output", nargs="?")
    a = p.parse_args(argv[1:])
    if a.list:
        print("\n".join(SHAPES))
        return 0
    if a.shape is None or a.size is None or a.output is None:
        p.error("SHAPE, SIZE and OUTPUT are needed")
    text = generate(a.shape, parse_size(a.size), a.node_bytes, a.item_map_nodes, a.dense)
    with open(a.output, "w", encoding="utf-8") as f:
        f.write(text)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
