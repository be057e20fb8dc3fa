"""The benchmark behind `make bench`: one module per part, run by `python -m bench`."""
