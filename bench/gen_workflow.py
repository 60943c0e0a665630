#!/usr/bin/python3
"""Generate a synthetic, valid telemachy/v1 workflow for benchmarks.

Two shapes:
  random DAG (default)  tasks are spread over --depth levels; a task is blocked
                        by 0..--max-deps tasks of earlier levels; a share
                        (--cross) is drawn from any team, and those in other
                        teams are written "team/subject"
  --chain               one chain through all tasks: the deepest graph there is,
                        the worst case for recursive graph walks.  With
                        --chain-order listed each task waits for the one listed
                        before it; with reversed, for the one listed after it
                        (so a walk that follows blocked_by from the first task
                        in the file goes the full length)

The output depends only on the flags: the same seed gives the same bytes.
Standard library only; writes YAML directly.  100,000 tasks (23 MiB) take
about 0.4 s.
"""

import argparse
import random
import sys

VERBS = ("build", "test", "review", "refactor", "document", "profile",
         "package", "deploy", "audit", "migrate", "benchmark", "port")
NOUNS = ("parser", "scheduler", "journal", "client", "server", "planner",
         "watcher", "schema", "cli", "metrics", "runner", "loader")
MODELS = ("claude-sonnet-4", "claude-opus-4", "claude-haiku-4")


def positive(text):
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return value


def non_negative(text):
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError("must be at least 0")
    return value


def share(text):
    value = float(text)
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError("must be between 0 and 1")
    return value


def parse_args(argv):
    p = argparse.ArgumentParser(
        description="Generate a synthetic valid telemachy/v1 workflow.")
    p.add_argument("--agents", type=positive, default=8, metavar="N",
                   help="number of agents (default 8)")
    p.add_argument("--teams", type=positive, default=4, metavar="M",
                   help="number of teams (default 4)")
    p.add_argument("--tasks", type=non_negative, default=1000, metavar="T",
                   help="number of tasks (default 1000)")
    p.add_argument("--depth", type=positive, default=10, metavar="D",
                   help="levels of the random DAG (default 10)")
    p.add_argument("--max-deps", type=non_negative, default=3, metavar="K",
                   help="a task is blocked by 0..K tasks (default 3)")
    p.add_argument("--cross", type=share, default=0.25, metavar="P",
                   help="share of dependencies drawn from any team rather "
                        "than the task's own (default 0.25)")
    p.add_argument("--seed", type=int, default=1, metavar="S",
                   help="random seed (default 1)")
    p.add_argument("--chain", action="store_true",
                   help="a single chain of T tasks instead of a random DAG")
    p.add_argument("--chain-order", choices=("listed", "reversed"),
                   default="listed",
                   help="listed: each task waits for the one listed before "
                        "it; reversed: for the one listed after it")
    p.add_argument("-o", "--output", metavar="FILE",
                   help="write to FILE instead of stdout")
    return p.parse_args(argv)


def team_members(n_agents, n_teams):
    """Agent i joins team i % M; a team left empty (fewer agents than teams)
    borrows agent j % N, so every team has at least one member."""
    members = [[] for _ in range(n_teams)]
    for i in range(n_agents):
        members[i % n_teams].append(i)
    for j in range(n_teams):
        if not members[j]:
            members[j].append(j % n_agents)
    return members


def random_dag(rng, n_tasks, n_teams, depth, max_deps, cross):
    """Returns (team_of, deps): deps[t] lists global task indices of earlier
    levels.  Levels are contiguous ranges of t, so "earlier level" is a prefix
    of the global order and of each team's own order."""
    team_of = [t % n_teams for t in range(n_tasks)]
    deps = [()] * n_tasks
    team_tasks = [[] for _ in range(n_teams)]
    # At the start of each level: how many tasks (global, per team) precede it.
    global_prefix = 0
    team_prefix = [0] * n_teams
    level = -1
    randint = rng.randint
    randrange = rng.randrange
    rand = rng.random
    for t in range(n_tasks):
        lv = t * depth // n_tasks
        if lv != level:
            level = lv
            global_prefix = t
            team_prefix = [len(x) for x in team_tasks]
        j = team_of[t]
        if global_prefix and max_deps:
            k = randint(0, max_deps)
            if k:
                own = team_tasks[j]
                own_n = team_prefix[j]
                picked = {}
                for _ in range(k):
                    if own_n and rand() >= cross:
                        d = own[randrange(own_n)]
                    else:
                        d = randrange(global_prefix)
                    picked[d] = None
                deps[t] = tuple(picked)
        team_tasks[j].append(t)
    return team_of, deps


def chain(n_tasks, n_teams, order):
    """Tasks in contiguous blocks per team (so the chain crosses teams M-1
    times and stays within a team otherwise), in file order."""
    team_of = [t * n_teams // n_tasks for t in range(n_tasks)] if n_tasks else []
    if order == "listed":
        deps = [(t - 1,) if t else () for t in range(n_tasks)]
    else:
        deps = [(t + 1,) if t + 1 < n_tasks else () for t in range(n_tasks)]
    return team_of, deps


def generate(args, out):
    rng = random.Random(args.seed)
    n_agents, n_teams, n_tasks = args.agents, args.teams, args.tasks
    aw = len(str(max(n_agents - 1, 0)))
    tw = len(str(max(n_teams - 1, 0)))
    agent_names = ["agent-%0*d" % (aw, i) for i in range(n_agents)]
    team_names = ["team-%0*d" % (tw, j) for j in range(n_teams)]
    members = team_members(n_agents, n_teams)

    if args.chain:
        team_of, deps = chain(n_tasks, n_teams, args.chain_order)
        shape = "chain-" + args.chain_order
    else:
        team_of, deps = random_dag(rng, n_tasks, n_teams, args.depth,
                                   args.max_deps, args.cross)
        shape = "dag-d%d" % args.depth

    # Subjects: unique within a team because they carry the global index; no
    # "/" in them, so "team/subject" references stay unambiguous.
    subjects = ["%s %s %d" % (VERBS[t % len(VERBS)],
                              NOUNS[(t // len(VERBS)) % len(NOUNS)], t)
                for t in range(n_tasks)]

    w = []
    emit = w.append
    emit("# Generated by bench/gen_workflow.py; do not edit.\n")
    emit("apiVersion: telemachy/v1\n")
    emit("metadata:\n")
    emit("  name: bench-%s-t%d-s%d\n" % (shape, n_tasks, args.seed))
    emit("  description: Synthetic workflow, %d agents, %d teams, %d tasks\n"
         % (n_agents, n_teams, n_tasks))
    emit("  generator: gen_workflow.py\n")
    emit("  seed: %d\n" % args.seed)
    emit("teardown: on_completion\n")
    emit("timeout_seconds: 86400\n")
    emit("agents:\n")
    for i, name in enumerate(agent_names):
        emit("  - name: %s\n" % name)
        emit("    program: none\n")
        emit("    model: %s\n" % MODELS[i % len(MODELS)])
        emit("    cpus: %d\n" % (1 + i % 4))
        emit("    memory: %dg\n" % (1 << (i % 4)))
        emit("    env:\n")
        emit("      BENCH_AGENT: \"%d\"\n" % i)
    emit("teams:\n")

    by_team = [[] for _ in range(n_teams)]
    for t in range(n_tasks):
        by_team[team_of[t]].append(t)

    for j, tname in enumerate(team_names):
        emit("  - name: %s\n" % tname)
        emit("    agents:\n")
        for a in members[j]:
            emit("      - %s\n" % agent_names[a])
        if not by_team[j]:
            emit("    tasks: []\n")
            continue
        emit("    tasks:\n")
        mem = members[j]
        nmem = len(mem)
        for pos, t in enumerate(by_team[j]):
            emit("      - subject: %s\n" % subjects[t])
            emit("        description: Synthetic task %d for %s. Please %s the "
                 "%s and report back when it is done.\n"
                 % (t, tname, VERBS[t % len(VERBS)],
                    NOUNS[(t // len(VERBS)) % len(NOUNS)]))
            emit("        assign_to: %s\n" % agent_names[mem[pos % nmem]])
            d = deps[t]
            if d:
                emit("        blocked_by:\n")
                for x in d:
                    if team_of[x] == j:
                        emit("          - %s\n" % subjects[x])
                    else:
                        emit("          - %s/%s\n"
                             % (team_names[team_of[x]], subjects[x]))
            if t % 10 == 0:
                emit("        retries: %d\n" % (t % 3))
                emit("        timeout_seconds: %d\n" % (600 + t % 3600))
    out.write("".join(w))


def main(argv):
    args = parse_args(argv)
    if args.output:
        with open(args.output, "w", encoding="utf-8", newline="\n") as f:
            generate(args, f)
    else:
        generate(args, sys.stdout)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
