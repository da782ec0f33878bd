"""The nemesis checker: hand-made histories with known anomalies, and the whole harness on
in-process clouds, where it passes a correct store and catches a store that ignores versions."""

from __future__ import annotations

import json
from typing import Any

import pytest

from failover.nemesis.checker import check, percentiles, read_final, read_history
from failover.nemesis.workload import History
from tests.fakes import InMemoryMessageStore
from tests.unit.nemesis_sim import SimWorld, VersionBlindStore

V1 = "1760000000000-000000-aws"
V2 = "1760000000005-000000-azure"
ID1 = "0" * 26
ID2 = "1" * 26


def record(message_id: str, version: str, text: str = "c1-0", deleted: bool = False, **extra: Any) -> dict[str, Any]:
    return {"channel": "n1", "id": message_id, "author": "", "text": "" if deleted else text, "version": version,
            "deleted": deleted, **extra}  # fmt: skip


def post(
    index: int, message_id: str, version: str, value: str = "c1-0", key: str | None = None, **extra: Any
) -> list[dict[str, Any]]:
    op = {"process": "c1", "f": "post", "cloud": "aws", "channel": "n1", "key": key, "value": value}
    return [
        {"index": index, "time": index * 0.1, "type": "invoke", **op},
        {"index": index + 1, "time": index * 0.1 + 0.05, "type": "ok", "id": message_id, "version": version, **op,
         **extra},
    ]  # fmt: skip


def delete(index: int, message_id: str, outcome: str = "ok") -> list[dict[str, Any]]:
    op = {"process": "c2", "f": "delete", "cloud": "azure", "channel": "n1", "id": message_id}
    return [
        {"index": index, "time": index * 0.1, "type": "invoke", **op},
        {"index": index + 1, "time": index * 0.1 + 0.05, "type": outcome, **op},
    ]


def both(*records: dict[str, Any]) -> dict[str, list[dict[str, Any]]]:
    return {"aws": list(records), "azure": list(records)}


def test_a_clean_history_passes() -> None:
    history = post(0, ID1, V1) + delete(2, ID1) + post(4, ID2, V1, value="c1-4")
    final = both(record(ID1, V2, deleted=True), record(ID2, V1, text="c1-4"))
    report = check(history, final)
    assert report.ok, report.to_dict()
    assert report.counts["acknowledged_posts"] == 2 and report.counts["acknowledged_deletes"] == 1


def test_a_missing_acknowledged_post_is_lost() -> None:
    report = check(post(0, ID1, V1), both())
    assert report.kinds() == {"lost"}
    assert {a.cloud for a in report.anomalies} == {"aws", "azure"}


def test_an_older_version_than_acknowledged_is_lost_and_a_newer_one_supersedes() -> None:
    older = "1759999999999-000000-azure"
    assert check(post(0, ID1, V1), both(record(ID1, older))).kinds() == {"lost"}
    assert check(post(0, ID1, V1), both(record(ID1, V2))).ok


def test_other_content_under_the_acknowledged_version_is_lost() -> None:
    history = post(0, ID1, V1) + post(2, ID2, V2, value="c1-2")
    assert check(history, both(record(ID1, V1, text="c1-2"), record(ID2, V2, text="c1-2"))).kinds() == {"lost"}


def test_a_live_record_after_an_acknowledged_delete_is_resurrected() -> None:
    history = post(0, ID1, V1) + delete(2, ID1)
    report = check(history, both(record(ID1, V2)))
    assert report.kinds() == {"resurrected"}


def test_a_delete_that_failed_or_may_not_have_happened_asserts_nothing() -> None:
    assert check(post(0, ID1, V1) + delete(2, ID1, "fail"), both(record(ID1, V1))).ok
    assert check(post(0, ID1, V1) + delete(2, ID1, "info"), both(record(ID1, V1))).ok


def test_two_ids_for_one_idempotency_key_are_a_duplicate() -> None:
    history = post(0, ID1, V1, value="c1-key", key="k") + post(2, ID2, V2, value="c1-key", key="k")
    report = check(history, both(record(ID1, V1, text="c1-key"), record(ID2, V2, text="c1-key")))
    assert "duplicate" in report.kinds()


def test_one_id_for_a_key_retried_on_two_clouds_is_fine_whichever_version_won() -> None:
    history = post(0, ID1, V1, value="c1-key", key="k") + post(2, ID1, V2, value="c1-key", key="k")
    report = check(history, both(record(ID1, V2, text="c1-key")))
    assert report.ok, report.to_dict()


def test_a_value_nobody_wrote_is_a_phantom() -> None:
    report = check(post(0, ID1, V1), both(record(ID1, V1), record(ID2, V1, text="never sent")))
    assert report.kinds() == {"phantom"}


def test_stores_that_differ_are_divergent() -> None:
    history = post(0, ID1, V1)
    report = check(history, {"aws": [record(ID1, V2)], "azure": [record(ID1, V1)]})
    assert report.kinds() == {"divergent"}


def test_convergence_percentiles_come_from_the_watchers_first_visible_read() -> None:
    history = post(0, ID1, V1)  # acknowledged at 0.05
    history.append({"index": 2, "time": 0.3, "process": "watcher", "type": "ok", "f": "read", "cloud": "azure",
                    "watch": 1, "visible": True})  # fmt: skip
    history += post(3, ID2, V1, value="c1-3")  # acknowledged at 0.35, only seen through the heal
    history.append({"index": 5, "time": 1.35, "process": "run", "type": "info", "f": "healed"})
    report = check(history, both(record(ID1, V1), record(ID2, V1, text="c1-3")))
    assert report.ok
    assert report.counts["converged_by_streams"] == 1 and report.counts["converged_by_heal"] == 1
    assert report.convergence_s == {"p50": 0.25, "p90": 1.0, "p99": 1.0, "max": 1.0}


def test_percentiles_are_nearest_rank() -> None:
    assert percentiles([]) == {"p50": None, "p90": None, "p99": None, "max": None}
    assert percentiles([float(n) for n in range(1, 101)]) == {"p50": 50.0, "p90": 90.0, "p99": 99.0, "max": 100.0}


def test_history_and_final_files_round_trip(tmp_path: Any) -> None:
    history = History()
    history.add(process="c1", type="invoke", f="post", cloud="aws", channel="n1", key=None, value="v")
    history.write(tmp_path / "history.jsonl")
    (tmp_path / "final.json").write_text('{"clouds": {"aws": []}}')
    assert read_history(tmp_path / "history.jsonl") == history.events
    assert read_final(tmp_path / "final.json") == {"aws": []}


@pytest.mark.parametrize("seed", range(4))
def test_the_harness_finds_no_anomaly_on_a_correct_store(seed: int) -> None:
    events, final = SimWorld(("aws", "azure"), InMemoryMessageStore, seed).workload(seed, 250).run()
    report = check(events, final)
    assert report.ok, report.to_dict()
    # The run did exercise something: writes were acknowledged, faults injected, records kept.
    assert report.counts["acknowledged_posts"] > 20 and report.counts["acknowledged_deletes"] > 5
    assert report.counts["nemesis_events"] > 5 and report.counts["records"] > 0


@pytest.mark.parametrize("seed", range(4))
def test_the_harness_catches_a_put_if_newer_that_ignores_versions(seed: int) -> None:
    events, final = SimWorld(("aws", "azure"), VersionBlindStore, seed).workload(seed, 250).run()
    report = check(events, final)
    assert not report.ok
    assert report.kinds() & {"lost", "resurrected", "divergent"}


def test_recheck_judges_every_saved_run_again_and_names_the_bad_one(tmp_path: Any) -> None:
    from failover.nemesis.run import main, recheck

    for seed, store in ((3, InMemoryMessageStore), (4, VersionBlindStore), (5, InMemoryMessageStore)):
        events, final = SimWorld(("aws", "azure"), store, seed).workload(seed, 250).run()
        history = History()
        history.events = list(events)
        history.write(tmp_path / f"history-{seed}.jsonl")
        (tmp_path / f"final-{seed}.json").write_text(json.dumps({"clouds": final}))
    (tmp_path / "history-9.jsonl").write_text("")  # cut off before its final state: no verdict, skipped

    summary = recheck(tmp_path)

    assert summary["runs"] == 3 and summary["seeds"] == "3-5"
    assert [r["seed"] for r in summary["results"] if not r["ok"]] == [4]
    assert summary["runs_with_anomalies"] == 1 and summary["anomalies"] > 0
    assert json.loads((tmp_path / "summary-all.json").read_text())["runs"] == 3
    assert (tmp_path / "convergence-all.png").stat().st_size > 0
    assert main(["--recheck", "--out", str(tmp_path)]) == 1  # an anomaly anywhere fails the command
