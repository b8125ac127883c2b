"""What the gateway publishes over MQTT beside ingest: the time for boards without a clock
(``clock``), new edge models for the boards that run them (``model_push``) and Home
Assistant's discovery and state (``homeassistant``)."""

__all__: list[str] = []  # modules only: import what you need from each
