"""Which records were made from a deal: production items, complaints (F48).

Two sources, read together: live links in ``voronka.links`` from the deal to another deal (any role:
``production``, ``complaint`` …; the deal is the link's source), and the ``linked`` timeline entries the
robot «create a linked record» writes on the deal it ran on. Nothing else in analytics knows how the
chain is stored.
"""

from __future__ import annotations

from voronka.deals.outcome import CHUNK, downstream_of  # noqa: F401  (the one reading of the chains)

HOW = "deals the sales deal links to, or made from it by the robot «create a linked record»"
