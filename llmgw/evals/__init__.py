"""Offline eval suites: run variants of a prompt/model through the gateway, score, compare with statistics."""
