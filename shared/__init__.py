"""LEARNAE edge wire protocol: topics, payload codec, config schema.

Runs unchanged under CPython and MicroPython: import only what both have
(struct, json) and keep this package file empty so a board imports only the
modules it needs.
"""
