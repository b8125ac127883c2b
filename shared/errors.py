"""The protocol's one exception type."""


class ProtocolError(ValueError):
    """A payload, topic or config that breaks the protocol.

    The message names the offending field and value, e.g.
    ``channel count 300 exceeds 16``.
    """
