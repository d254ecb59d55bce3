"""Fuzzing the HTTP surface: schemathesis over the service's OpenAPI document (test_openapi.py) and
hypothesis-mutated hook requests (test_bodies.py, strategies in strategies.py).

Bounded by default so that `make test` stays fast: FUZZ_EXAMPLES examples per test, derandomized so a
CI failure reproduces on every run. A longer campaign raises CDS_FUZZ_EXAMPLES and, with
CDS_FUZZ_RANDOM=1, explores new examples on each run (docs/fuzzing.md).
"""

from __future__ import annotations

import os

from hypothesis import HealthCheck, settings

FUZZ_EXAMPLES = int(os.environ.get("CDS_FUZZ_EXAMPLES", "150"))
FUZZ_RANDOM = os.environ.get("CDS_FUZZ_RANDOM", "") == "1"

settings.register_profile(
    "cds-fuzz",
    max_examples=FUZZ_EXAMPLES,
    deadline=None,
    derandomize=not FUZZ_RANDOM,
    # Derandomized runs replay nothing from .hypothesis/; a random campaign keeps what it finds there.
    **({} if FUZZ_RANDOM else {"database": None}),
    # One service (and its database) serves every example of a test, deliberately: state that builds
    # up across calls is part of what is fuzzed. Mutated FHIR bundles are large and slow to generate.
    suppress_health_check=[
        HealthCheck.function_scoped_fixture,
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
        HealthCheck.large_base_example,
    ],
    print_blob=True,
)

# Applied per test (`@FUZZ`), not loaded globally, so the suite's other property tests keep their settings.
FUZZ = settings.get_profile("cds-fuzz")
# Examples that also draw every chart their cards link to (matplotlib, tens of ms a drawing) and that
# sign a token each: a third of the examples in the bounded run, as many as asked in a campaign.
FUZZ_CHARTS = settings(FUZZ, max_examples=FUZZ_EXAMPLES if FUZZ_RANDOM else max(FUZZ_EXAMPLES // 3, 1))
