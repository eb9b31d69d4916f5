"""The runtime of batch runs: per-file work and outputs, worker processes, dask clusters."""
