"""How figures are read against the raw loops, the peers of this run and the quoted peers.

The harness's smoke run (``--quick``) prints no target lines, so these readings are checked
here, on hand-made lines whose expected ratios follow from their figures.
"""

from __future__ import annotations

from typing import Any

from benchmarks.comparison import target_lines, with_ratios
from benchmarks.peers import peer_named
from benchmarks.suite import Case, _turns


def _line(system: str, backend: str, workload: str, **figures: Any) -> dict[str, Any]:
    return {
        "system": system,
        "backend": backend,
        "workload": workload,
        "jobs_per_s": figures.pop("jobs_per_s", None),
        "p50_ms": figures.pop("p50_ms", None),
        "p99_ms": figures.pop("p99_ms", None),
        **figures,
    }


def test_prismq_is_read_against_the_peer_of_this_run_and_the_quoted_one() -> None:
    quoted = peer_named("pgqueuer").jobs_per_s["drain"]
    earlier = [
        _line("raw-driver", "postgresql", "drain", jobs_per_s=40_000.0),
        _line("pgqueuer", "postgresql", "drain", jobs_per_s=5_000.0),
    ]
    record = with_ratios(_line("prismq", "postgresql", "drain", jobs_per_s=15_000.0), earlier)
    assert record["vs_raw"]["ratio"] == 0.375
    assert record["vs_peers_same_run"] == {"pgqueuer": 3.0}
    assert record["vs_peers"]["pgqueuer"] == float(f"{15_000 / quoted:.3g}")


def test_a_peer_line_gets_its_raw_ratio_but_no_peer_ratios() -> None:
    earlier = [_line("raw-driver", "postgresql", "drain", jobs_per_s=40_000.0)]
    record = with_ratios(_line("pgqueuer", "postgresql", "drain", jobs_per_s=4_000.0), earlier)
    assert record["vs_raw"]["ratio"] == 0.1
    assert "vs_peers" not in record
    assert "vs_peers_same_run" not in record


def test_enqueue_lines_are_compared_at_the_same_sqlite_durability_only() -> None:
    huey_full = _line(
        "huey", "sqlite", "enqueue_single", jobs_per_s=4_000.0, sqlite_synchronous="FULL"
    )
    normal = with_ratios(
        _line(
            "prismq", "sqlite", "enqueue_single", jobs_per_s=7_000.0, sqlite_synchronous="NORMAL"
        ),
        [huey_full],
    )
    full = with_ratios(
        _line("prismq", "sqlite", "enqueue_single", jobs_per_s=3_000.0, sqlite_synchronous="FULL"),
        [huey_full],
    )
    assert "vs_peers_same_run" not in normal
    assert full["vs_peers_same_run"] == {"huey": 0.75}


def test_latency_is_read_as_ratios_of_the_percentiles() -> None:
    peer = _line("pgqueuer", "postgresql", "latency", p50_ms=4.0, p99_ms=8.0)
    record = with_ratios(_line("prismq", "postgresql", "latency", p50_ms=3.0, p99_ms=4.0), [peer])
    assert record["vs_peers_same_run"] == {"pgqueuer": {"p50_ratio": 0.75, "p99_ratio": 0.5}}


def test_each_target_is_read_against_the_quoted_figure_and_the_peer_here() -> None:
    quoted = peer_named("pgqueuer").jobs_per_s["drain"]
    records = [
        _line("pgqueuer", "postgresql", "drain", jobs_per_s=5_000.0),
        _line("prismq", "postgresql", "drain", jobs_per_s=3.5 * quoted),
    ]
    lines = [line for line in target_lines(records) if "postgresql drain >=" in line]
    assert len(lines) == 2
    quoted_line, here_line = lines
    assert quoted_line.startswith("met ")
    assert "pgqueuer quoted" in quoted_line
    assert 3.5 * quoted < 3 * 5_000  # 3.5x the quoted figure is short of 3x the peer here
    assert here_line.startswith("MISS")
    assert "pgqueuer here (15,000/s)" in here_line


def test_latency_target_uses_the_peers_p50_of_this_run() -> None:
    records = [
        _line("pgqueuer", "postgresql", "latency", p50_ms=2.5, p99_ms=5.0),
        _line("prismq", "postgresql", "latency", p50_ms=2.8, p99_ms=5.5),
    ]
    lines = [line for line in target_lines(records) if "latency" in line]
    assert lines[0].startswith("met ")  # the page's limits: p50 <= 3.2, p99 <= 6
    assert lines[1].startswith("MISS")
    assert "2.50 ms (pgqueuer's p50 here)" in lines[1]


def _case(system: str, workload: str) -> Case:
    def unused(url: str) -> Any:
        raise AssertionError("not run")

    return Case(system=system, workload=workload, measure=unused, durability=unused)


def test_the_systems_of_a_workload_take_turns_in_the_order_given() -> None:
    cases = [
        _case("raw-driver", "enqueue_single"),
        _case("raw-driver", "drain"),
        _case("pgqueuer", "enqueue_single"),
        _case("pgqueuer", "drain"),
        _case("prismq", "enqueue_single"),
        _case("prismq", "drain"),
        _case("prismq", "drain_2w"),
    ]
    groups = [[(case.system, case.workload) for case in group] for group in _turns(cases)]
    assert groups == [
        [
            ("raw-driver", "enqueue_single"),
            ("pgqueuer", "enqueue_single"),
            ("prismq", "enqueue_single"),
        ],
        [("raw-driver", "drain"), ("pgqueuer", "drain"), ("prismq", "drain")],
        [("prismq", "drain_2w")],
    ]
