# The HTTP API's client tests and load benchmark (included by the top-level Makefile).
.PHONY: test-api test-api-es8 bench-api

test-api: install  ## official 9.x client, 200-request burst, graceful shutdown against `sidecar serve`
	$(BIN)/pytest tests/api -q

test-api-es8: install  ## the same client tests with the 8.x client (creates .venv-es8 once)
	tests/api/run_es8.sh

bench-api: install  ## load benchmark, batching on vs off; writes the "HTTP API" section of docs/benchmarks.md
	$(BIN)/python benchmarks/bench_api.py --duration $${DURATION:-30}
