"""Clinical arithmetic and the calculations that turn it into named facts, one package per topic.

Each topic holds a pure `calculator` (arithmetic only: every threshold is an argument, nothing of the
service is imported) beside the `facts` adapter that reads named facts, configures the calculator from the
parameters of the rule file that `provides:` the calculation, and words its results. `configure` orders the
calculations a ruleset provides; `registry` names every calculation a rule file can provide.
"""

# The public modules and topics; each names its own public functions and types.
__all__ = [
    "base",
    "configure",
    "exposure",
    "ferritin",
    "hlh2004",
    "hscore",
    "infusion",
    "inputs",
    "mas2016",
    "registry",
    "renal",
    "sample",
    "therapy",
    "tristate",
    "wording",
]
