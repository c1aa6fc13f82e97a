"""Mutation score per module, from the results of the last ``mutmut run`` (``make mutate`` runs both).

    python -m benchmarks.mutation [--out docs/results] [--accepted docs/testing.md]

A surviving mutant is a one-line bug the tests did not notice. Each module in ``[tool.mutmut]
only_mutate`` must keep at most ``--max-survivors`` (10%) of its mutants alive, and every survivor must
be listed in docs/testing.md (a table row that starts with the mutant's name in backticks, then why it is
equivalent or harmless). Writes mutation.json and mutation.md under --out; exits 1 when a module is over
the limit, a survivor is unlisted or a mutant was never checked (an interrupted run), naming them.
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
from collections import Counter
from dataclasses import asdict, dataclass
from pathlib import Path

if not __package__:  # run as a script: make `import edge` find the package
    sys.path[0] = str(Path(__file__).resolve().parents[1])

from edge.atomic import write_text  # noqa: E402

# mutmut's verdicts: a test failed (or hung, or crashed) on the mutant, or every test passed
DETECTED = {"killed", "timeout", "segfault", "caught by type check"}
SURVIVED = {"survived", "no tests", "suspicious"}
UNCHECKED = "not checked"  # a run stopped before it got there
_RESULT = re.compile(r"^\s*(\S+): (.+?)\s*$")
_MODULE = re.compile(r"^(.+?)\.x(?:_|ǁ)")
_ACCEPTED = re.compile(r"^\|\s*`([^`]+__mutmut_\d+)`\s*\|")


@dataclass
class ModuleScore:
    module: str
    mutants: int
    killed: int
    survived: int
    accepted: int
    unchecked: int

    @property
    def survival(self) -> float:
        """Of the mutants checked so far."""
        return self.survived / max(1, self.mutants - self.unchecked)


def parse_results(text: str) -> dict[str, str]:
    """{mutant name: verdict} from ``mutmut results --all true``."""
    return {m.group(1): m.group(2) for line in text.splitlines() if (m := _RESULT.match(line))}


def module_of(mutant: str) -> str:
    m = _MODULE.match(mutant)
    if m is None:
        raise ValueError(f"mutation: cannot tell the module of mutant {mutant!r}")
    return m.group(1)


def accepted_survivors(doc: Path) -> set[str]:
    """Mutant names listed (first table cell, in backticks) in ``doc``."""
    if not doc.is_file():
        return set()
    return {m.group(1) for line in doc.read_text().splitlines() if (m := _ACCEPTED.match(line))}


def scores(results: dict[str, str], accepted: set[str]) -> list[ModuleScore]:
    unknown = {v for v in results.values()} - DETECTED - SURVIVED - {UNCHECKED}
    if unknown:
        raise SystemExit(f"mutation: mutmut verdicts this report does not know: {sorted(unknown)}")
    total, killed, survived, ok, unchecked = Counter(), Counter(), Counter(), Counter(), Counter()
    for name, verdict in results.items():
        mod = module_of(name)
        total[mod] += 1
        if verdict in DETECTED:
            killed[mod] += 1
        elif verdict == UNCHECKED:
            unchecked[mod] += 1
        else:
            survived[mod] += 1
            ok[mod] += name in accepted
    return [ModuleScore(m, total[m], killed[m], survived[m], ok[m], unchecked[m]) for m in sorted(total)]


def problems(results: dict[str, str], accepted: set[str], rows: list[ModuleScore], limit: float) -> list[str]:
    out = [f"{r.module}: {r.unchecked} of {r.mutants} mutants not checked yet (finish `make mutate`)"
           for r in rows if r.unchecked]
    out += [f"{r.module}: {r.survived} of {r.mutants} mutants survive ({r.survival:.0%} > {limit:.0%})"
            for r in rows if r.survival > limit]
    out += [f"survivor not listed in docs/testing.md: {name} ({verdict})" for name, verdict in sorted(results.items())
            if verdict in SURVIVED and name not in accepted]
    return out


def markdown(rows: list[ModuleScore], limit: float) -> str:
    lines = ["# Mutation score", "",
             f"`make mutate` (mutmut; see docs/testing.md). Goal: at most {limit:.0%} surviving mutants per "
             "module, every survivor listed in docs/testing.md as equivalent or harmless.", "",
             "| module | mutants | killed | survived | listed in docs/testing.md | not checked | survival |",
             "|---|---:|---:|---:|---:|---:|---:|"]
    lines += [f"| {r.module} | {r.mutants} | {r.killed} | {r.survived} | {r.accepted} | {r.unchecked} | "
              f"{r.survival:.1%} |" for r in rows]
    return "\n".join(lines) + "\n"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", type=Path, default=Path("docs/results"))
    ap.add_argument("--accepted", type=Path, default=Path("docs/testing.md"))
    ap.add_argument("--max-survivors", type=float, default=0.10)
    ap.add_argument("--list-survivors", action="store_true",
                    help="print the unlisted survivors' names and stop: mutmut keeps their verdicts while their "
                         "code is unchanged, so `make mutate` re-runs them against the current tests")
    args = ap.parse_args()
    proc = subprocess.run([sys.executable, "-m", "mutmut", "results", "--all", "true"], capture_output=True,
                          text=True)
    if proc.returncode != 0:
        raise SystemExit(f"mutation: `mutmut results` failed: {proc.stderr.strip()[-500:]}")
    results = parse_results(proc.stdout)
    if not results:
        raise SystemExit("mutation: no mutmut results here; run `make mutate`")
    accepted = accepted_survivors(args.accepted)
    if args.list_survivors:
        print(" ".join(n for n, v in sorted(results.items()) if v in SURVIVED and n not in accepted))
        return
    rows = scores(results, accepted)
    args.out.mkdir(parents=True, exist_ok=True)
    write_text(args.out / "mutation.json", json.dumps({"max_survivors": args.max_survivors,
                                                       "modules": [asdict(r) for r in rows]}, indent=2) + "\n")
    write_text(args.out / "mutation.md", markdown(rows, args.max_survivors))
    print(markdown(rows, args.max_survivors))
    bad = problems(results, accepted, rows, args.max_survivors)
    for line in bad:
        print(line, file=sys.stderr)
    sys.exit(1 if bad else 0)


if __name__ == "__main__":
    main()
