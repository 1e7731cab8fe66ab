"""Datasets: robomimic/MimicGen hdf5 (exchange) and zarr replay buffers (training)."""
