"""Adapters for the external services comms hands messages to, one package per vendor."""
