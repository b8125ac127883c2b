"""How the gateway's learner joins the LEARNAE round loop (``gateway.peer``).

The peer layer asks a ``LocalTrainer`` for one training step per round and never
sees a reading. ``GatewayTrainer`` answers from the store and the model registry
(``trainer``); ``PeerPart`` runs the node as a part of the service once there is
something to train on (``part``); ``PeerView`` shows the node to the API (``view``).
"""

from gateway.federation.part import PeerPart
from gateway.federation.trainer import GatewayTrainer
from gateway.federation.view import PeerView

__all__ = ["GatewayTrainer", "PeerPart", "PeerView"]
