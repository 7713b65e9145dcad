import os

# Tests run on the CPU even where a GPU is present; determinism tests compare exact bits.
os.environ.setdefault("JAX_PLATFORMS", "cpu")
