"""The workload bench's report: ratios to the baseline, same answers, the best peer."""

from __future__ import annotations

from chatport.bench.workloads import WorkloadResult, markdown


def test_the_report_compares_each_server_with_the_baseline_and_names_the_best_peer():
    results = [
        WorkloadResult("chatport", "edit", 1, 10.0, 0.1, 30.0, ["a"]),
        WorkloadResult("chatport --speculation auto", "edit", 1, 15.0, 0.1, 20.0, ["a"], drafted=300, accepted=200),
        WorkloadResult("llama-server", "edit", 1, 12.0, 0.1, 25.0, ["b"]),
        WorkloadResult("llama-server --spec-type ngram-mod", "edit", 1, 30.0, 0.1, 10.0, ["a"]),
    ]
    text = markdown("chatport bench --workload edit", results, "chatport", 1)
    assert "| edit | 1 | chatport --speculation auto | 15.0 | 0.10 | 20.0 | 1.50x | yes | 200/300 |" in text
    assert "| edit | 1 | llama-server | 12.0 | 0.10 | 25.0 | 1.20x | no | - |" in text
    assert "| edit | 1 | chatport --speculation auto | 15.0 | llama-server --spec-type ngram-mod | 30.0 | 0.50x |" in text
