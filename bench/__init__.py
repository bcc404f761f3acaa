"""ferrymq benchmarks (``make bench``): figures are printed, never asserted."""
