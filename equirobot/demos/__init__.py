"""Demonstrations: collection from scripted experts (and, later, MimicGen-style generation)."""
