"""Facts -> the named facts rules read, one entry for every name in the catalog."""

from __future__ import annotations

from cds_service.facts.catalog import FactCatalog
from cds_service.facts.conditions import condition_facts
from cds_service.facts.cultures import culture_facts
from cds_service.facts.labs import lab_facts
from cds_service.facts.medications import medication_facts
from cds_service.facts.model import Facts
from cds_service.facts.named import Fact, missing
from cds_service.facts.orders import order_facts
from cds_service.facts.patient import patient_facts


def named_facts(catalog: FactCatalog, facts: Facts, medication: str | None) -> dict[str, Fact]:
    """Every fact of `catalog.specs`; one that cannot be computed has value None and says why.

    `medication` is the medications.yaml key whose draft order the `order.*` facts describe (the service
    file's `medication:`); None when the service has no medication order.
    """
    units = catalog.units
    named = lab_facts(catalog.labs, facts, units)
    named.update(patient_facts(catalog.patient, facts, named))
    weight = named["patient.weight"]
    named.update(order_facts(catalog.medications, facts, units, medication, weight))
    named.update(medication_facts(catalog.medications, facts, units, weight))
    named.update(culture_facts(catalog.microbiology, facts))
    named.update(condition_facts(catalog.conditions, facts))
    if len(named) != len(catalog.specs):
        # Each reader produces exactly its specs (the tests check it); this only guards the contract.
        for name in catalog.specs.keys() - named.keys():
            named[name] = missing(name, "not computed: no reader for this fact")
    return named
