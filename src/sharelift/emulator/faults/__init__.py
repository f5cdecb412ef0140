"""Faults on demand: latency, bandwidth cap, resource-unit throttling, 5xx, dropped connections,
requests never answered, and SharePoint's refusal to replace some files.

    classify     what a request is and its resource-unit cost
    rules        the faults, one rule each, and the order they run in (`standard_rules`)
    never_answer the rule that accepts a request and never answers it
    replace_refusal  404 itemNotFound on replacing or deleting an Office or web file in a
                 site library (called by the Graph handlers, which know the file)
    middleware   FaultsMiddleware: runs the rules, paces body bytes
    dropper      ConnectionDropper: makes a dropped connection real at the server

Every knob lives in `settings.faults` and is read at request time.
"""

from sharelift.emulator.faults.classify import Classified, classify
from sharelift.emulator.faults.dropper import ConnectionDropper, DroppedConnection
from sharelift.emulator.faults.middleware import FaultsMiddleware
from sharelift.emulator.faults.rules import Arrival, Rule, Throttle, standard_rules

__all__ = [
    "Arrival",
    "Classified",
    "ConnectionDropper",
    "DroppedConnection",
    "FaultsMiddleware",
    "Rule",
    "Throttle",
    "classify",
    "standard_rules",
]
