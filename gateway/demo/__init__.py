"""The demo: a whole LEARNAE edge site on this machine (``learnae-gateway demo``).

``site`` starts a private broker, gateways and simulated boards and prints the
summary; ``alarms`` compares the gateways' anomaly events with the anomalies the
simulated sensors injected.
"""

from gateway.demo.site import DemoSettings, run_demo

__all__ = ["DemoSettings", "run_demo"]
