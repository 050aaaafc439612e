"""Print an exporter's samples as JSON, keyed `name{label="value",...}` with the labels sorted by name.

Verify compares samples by key, so the checks do not depend on the order prometheus-client writes labels in.
An exporter that does not answer yet gives `{}`, so the caller can retry.
"""

import json
import sys
import urllib.request

from prometheus_client.parser import text_string_to_metric_families

try:
    with urllib.request.urlopen(sys.argv[1], timeout=5) as response:
        text = response.read().decode()
except OSError:
    text = ""
samples = {}
for family in text_string_to_metric_families(text):
    for sample in family.samples:
        labels = ",".join(f'{key}="{value}"' for key, value in sorted(sample.labels.items()))
        samples[sample.name + "{" + labels + "}"] = sample.value
print(json.dumps(samples, sort_keys=True))
