"""Trigger adapters: parse the input, call shared/, shape the output."""
