"""Detectron2-style projects; ``projects.nats`` is NATS-D2."""
