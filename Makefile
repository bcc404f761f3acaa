# ferrymq developer entry points. Everything installs into .venv, created on first use.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-dev
RUN_STAMP := $(VENV)/.installed

.PHONY: run test test-fast lint typecheck unit compat bench clean java fuzz soak soak-netns

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip

$(RUN_STAMP): $(BIN)/python pyproject.toml setup.py
	$(BIN)/pip install -q -e .
	touch $@

$(STAMP): $(BIN)/python pyproject.toml setup.py
	$(BIN)/pip install -q -e '.[dev]'
	touch $@ $(RUN_STAMP)

## make run: start the all-in-one server (name server 9876, broker 10911)
run: $(RUN_STAMP)
	$(BIN)/ferrymq serve $(ARGS)

## make test: lint, type-check, unit and integration tests, then compat tests with real clients
test: $(STAMP) lint typecheck java
	$(BIN)/python -m pytest -q --durations=30 $(PYTEST_ARGS)

## make test-fast: only the tests that run in this interpreter (no server processes, no JVM), in seconds
test-fast: $(STAMP)
	$(BIN)/python -m pytest -q -p no:cacheprovider -m "not process and not slow" $(PYTEST_ARGS)

## make fuzz: coverage-guided fuzzing (atheris) of every decoder of untrusted bytes, FUZZ_SECONDS
## each (FUZZ_TARGETS="a b" for some); findings land in .fuzz/crashes/ and fail the run
FUZZ_SECONDS ?= 60
fuzz: $(STAMP)
	FUZZ_SECONDS=$(FUZZ_SECONDS) $(BIN)/python -m fuzz.run $(FUZZ_TARGETS)

## make soak: SOAK_SECONDS (300) of mixed native and Kafka load with consumers coming and going and a
## broker restart; fails if RSS grows >10 % after warm-up or an acknowledged message is missing;
## then the tests too slow for make test (FERRYMQ_SOAK_TESTS=1: an Apache slave's 60 s topic sync)
SOAK_SECONDS ?= 300
soak: $(STAMP) java
	SOAK_SECONDS=$(SOAK_SECONDS) $(BIN)/python -m bench.soak
	FERRYMQ_SOAK_TESTS=1 $(BIN)/python -m pytest -q -p no:cacheprovider compat-tests/test_apache_replication.py

## make soak-netns: the multi-host fault tests (root) with NETNS_SOAK_SECONDS (30) of load per phase
NETNS_SOAK_SECONDS ?= 30
soak-netns: $(STAMP)
	NETNS_SOAK_SECONDS=$(NETNS_SOAK_SECONDS) $(BIN)/python -m pytest -q -s tests/test_netns_faults.py

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(STAMP)
	$(BIN)/mypy core namesrv gateway client cli

## the Java compat modules (skipped, loudly, where Java or Maven is missing; an error under CI=true)
java:
	@if command -v mvn >/dev/null 2>&1 && command -v java >/dev/null 2>&1; then \
		if [ -f compat-tests/java/pom.xml ]; then \
			mvn -q -B -f compat-tests/java/pom.xml -DskipTests package dependency:build-classpath \
				-Dmdep.outputFile=target/classpath.txt; \
		fi; \
		if [ -f compat-tests/tools-java/pom.xml ]; then \
			mvn -q -B -f compat-tests/tools-java/pom.xml -DskipTests package dependency:build-classpath \
				-Dmdep.outputFile=target/classpath.txt || exit 1; \
		fi; \
		if [ -f compat-tests/grpc-java/pom.xml ]; then \
			mvn -q -B -f compat-tests/grpc-java/pom.xml -DskipTests package dependency:build-classpath \
				-Dmdep.outputFile=target/classpath.txt || exit 1; \
		fi; \
		if [ -f compat-tests/kafka-java/pom.xml ]; then \
			for line in kafka-3.9 kafka-4; do \
				mvn -q -B -f compat-tests/kafka-java/pom.xml -P $$line -DskipTests package \
					dependency:build-classpath && touch compat-tests/kafka-java/target/$$line/built.stamp \
					|| exit 1; \
			done; \
		fi; \
	elif [ "$$CI" = "true" ]; then \
		echo "!!! Java or Maven not found: under CI=true the Java compat tests may not be skipped !!!"; \
		exit 1; \
	else \
		echo "!!! Java or Maven not found: the Java compat tests will be SKIPPED !!!"; \
	fi

bench: $(STAMP) java
	$(BIN)/python -m bench $(ARGS)

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .mypy_cache .ruff_cache compat-tests/java/target compat-tests/tools-java/target compat-tests/grpc-java/target
