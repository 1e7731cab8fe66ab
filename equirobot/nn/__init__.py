"""Equivariant networks: temporal convolutions, the denoiser, encoders, relaxed layers, heads."""
