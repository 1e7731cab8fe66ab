"""Placeholder: variants being built."""

VARIANTS = ()
