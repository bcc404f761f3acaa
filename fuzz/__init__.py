"""Fuzz targets for ferrymq's decoders of untrusted bytes: targets.py (the properties), corpus.py (seeds
built with the project's encoders), run.py (``make fuzz``, atheris)."""
