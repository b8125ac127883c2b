"""The studies behind ``learnae-gateway experiment``: each runs the real code in process.

``resilience``: LEARNAE peers on an in-process network (``simnet``) under failures and
attacks; ``federation``: what federation does for forecasting at real sites. (``experiment
replay`` streams a history through the live detector: ``gateway.learning.replay``.)
"""

__all__: list[str] = []  # modules only: import what you need from each
