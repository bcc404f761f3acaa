"""Fuzz targets for ferrymq's decoders of untrusted bytes (see fuzz/README.md)."""
