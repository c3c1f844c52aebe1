"""Tools a person runs on the host, beside the pipeline (not steps of it)."""
