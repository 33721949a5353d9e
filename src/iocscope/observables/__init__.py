"""Parse, refang, classify and extract observables. Pure: no DNS, no network.

See docs/observables.md for the accepted forms and the canonical values.
"""

from iocscope.observables.domains import registered_domain
from iocscope.observables.extract import extract_observables
from iocscope.observables.parse import parse_observable
from iocscope.observables.refang import refang
from iocscope.observables.scope import address_scope, network_scope
from iocscope.observables.type_names import canonical_type

__all__ = [
    "address_scope",
    "canonical_type",
    "extract_observables",
    "network_scope",
    "parse_observable",
    "refang",
    "registered_domain",
]
