#!/usr/bin/env python3
"""Parses a metrics page with the Prometheus project's own parser (prometheus_client).

Reads OpenMetrics text on stdin and prints one JSON object: for every sample,
"name{label=value,...}" (labels sorted) -> value. A page the parser rejects makes it
exit non-zero with the parser's error, so a test fails on malformed output.
"""
import json
import sys

from prometheus_client.openmetrics.parser import text_string_to_metric_families


def main():
    samples = {}
    for family in text_string_to_metric_families(sys.stdin.read()):
        for sample in family.samples:
            labels = ",".join(f"{k}={v}" for k, v in sorted(sample.labels.items()))
            samples[f"{sample.name}{{{labels}}}"] = sample.value
    print(json.dumps(samples))


if __name__ == "__main__":
    main()
