"""Parts of benchmarks/load.py: processes and sampling, the HTTP client, the phases, wrk, the report."""
