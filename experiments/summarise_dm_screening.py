"""Issue 30: every screening arm of DivideMix's CPU-sized settings (seeds 1-3), each against the setting
it changes, paired by seed (docs/notes/2026-12-06-dividemix-study.md).

    python experiments/summarise_dm_screening.py [RUNS]    # RUNS: the runs folder (default runs)

Rounds 1 and 2 come from experiments/dividemix_queue.txt, rounds 3 to 5 from
experiments/dividemix_screening.sh.
Also prints how many screening runs exist, the number the issue compares with Co-mining's.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from summarise_dividemix import print_pairs  # noqa: E402


def table_run(arm: str, row: str) -> str:
    """The run directory `comining table --out runs/ARM` writes for DivideMix in ROW, {s} the seed."""
    return f"{arm}/{row}-dividemix-seed{{s}}"


# (table, row, arm, base pattern, arm pattern)
PAIRS = [
    ("round 1: mixup's α", "sym20", "α 0.5 (base: α 4)", table_run("dm-screen/published", "sym20"),
     table_run("dm-screen/alpha05", "sym20")),
    ("round 2: warm-up and λ_u", "sym20", "warm-up 10", table_run("dm-screen/alpha05", "sym20"),
     table_run("dm-screen2/warmup10", "sym20")),
    ("round 2: warm-up and λ_u", "sym50", "λ_u 0 (base: 25)", table_run("dm-screen2/alpha05", "sym50"),
     table_run("dm-screen2/lu0", "sym50")),
    ("round 2: warm-up and λ_u", "sym80", "λ_u 0 (base: 150)", table_run("dm-screen2/alpha05", "sym80"),
     table_run("dm-screen2/lu0", "sym80")),
    ("round 3: the rows not screened before", "annot20", "λ_u 0 (base: 25)",
     "dm-screen3/annot20-lu25-seed{s}", "dm-screen3/annot20-lu0-seed{s}"),
    ("round 3: the rows not screened before", "annot35", "λ_u 0 (base: 25)",
     "dm-screen3/annot35-lu25-seed{s}", "dm-screen3/annot35-lu0-seed{s}"),
] + [
    ("round 3: the rows not screened before", "asym40", arm, table_run("dm-screen3/asym40-base", "asym40"),
     table_run(f"dm-screen3/asym40-{name}", "asym40"))
    for name, arm in (("lu25", "λ_u 25 (base: 0)"), ("alpha4", "α 4 (base: 0.5)"), ("tau07", "τ 0.7 (base: 0.5)"))
] + [
    ("round 3: the rows not screened before", "sym20-open20", "λ_u 25 (base: 0)",
     table_run("dm-screen3/open-base", "sym20-open20"), table_run("dm-screen3/open-lu25", "sym20-open20")),
    ("round 3: the rows not screened before", "sym80", "α 4 (base: 0.5)", table_run("dm-screen2/alpha05", "sym80"),
     table_run("dm-screen3/sym80-alpha4", "sym80")),
] + [
    ("round 4: λ_u between 0 and 25, and the warm-up under pair flip", "human-worse", f"λ_u {arm} (base: 25)",
     "dm-screen4/human-worse-lu25-seed{s}", f"dm-screen4/human-worse-lu{arm}-seed{{s}}") for arm in (5, 0)
] + [
    ("round 4: λ_u between 0 and 25, and the warm-up under pair flip", "annot35", "λ_u 5 (base: 25)",
     "dm-screen3/annot35-lu25-seed{s}", "dm-screen4/annot35-lu5-seed{s}"),
    ("round 4: λ_u between 0 and 25, and the warm-up under pair flip", "annot35", "λ_u 5 (base: 0)",
     "dm-screen3/annot35-lu0-seed{s}", "dm-screen4/annot35-lu5-seed{s}"),
    ("round 4: λ_u between 0 and 25, and the warm-up under pair flip", "sym50", "λ_u 5 (base: 25)",
     table_run("dm-screen2/alpha05", "sym50"), table_run("dm-screen4/sym50-lu5", "sym50")),
    ("round 4: λ_u between 0 and 25, and the warm-up under pair flip", "sym50", "λ_u 5 (base: 0)",
     table_run("dm-screen2/lu0", "sym50"), table_run("dm-screen4/sym50-lu5", "sym50")),
    ("round 4: λ_u between 0 and 25, and the warm-up under pair flip", "asym40", "warm-up 10 (base: 5)",
     table_run("dm-screen3/asym40-base", "asym40"), table_run("dm-screen4/asym40-warmup10", "asym40")),
] + [
    ("round 5: λ_u 5 on the other rows", "annot20", f"λ_u 5 (base: {base})", f"dm-screen3/annot20-lu{base}-seed{{s}}",
     "dm-screen5/annot20-lu5-seed{s}") for base in (25, 0)
] + [
    ("round 5: λ_u 5 on the other rows", "human-aggre", f"λ_u {arm} (base: {base})", f"dm-screen5/human-aggre-lu{base}-seed{{s}}",
     f"dm-screen5/human-aggre-lu{arm}-seed{{s}}") for arm, base in ((0, 25), (5, 25), (5, 0))
] + [
    ("round 5: λ_u 5 on the other rows", "sym20", "λ_u 5 (base: 0)", table_run("dm-screen/alpha05", "sym20"), table_run("dm-screen5/sym20-lu5", "sym20")),
    ("round 5: λ_u 5 on the other rows", "sym20-open20", "λ_u 5 (base: 0)", table_run("dm-screen3/open-base", "sym20-open20"),
     table_run("dm-screen5/open-lu5", "sym20-open20")),
]


def main(runs: Path) -> int:
    print_pairs(runs, PAIRS)
    screening = [p for folder in ("dm-screen", "dm-screen2", "dm-screen3", "dm-screen4", "dm-screen5")
                 for p in (runs / folder).glob("**/results.json")]
    print(f"\nscreening runs finished: {len(screening)}")
    return 0


if __name__ == "__main__":
    sys.exit(main(Path(sys.argv[1] if len(sys.argv) > 1 else "runs")))
