# SPDX-License-Identifier: Apache-2.0
SHELL := /bin/bash
MVNW := ./mvnw -B -ntp
# Every test connection and its peer is a descriptor: raise the soft limit to the hard one.
FDS := ulimit -n $$(ulimit -Hn)

.PHONY: deps build test demo bench-repair bench-hold crds format clean

# Make splits a function's arguments at commas: a default with commas in it must be a
# variable of its own, not text inside $(or …).
BENCH_ARGS := --connections 1,100,1000,10000

deps:
	@scripts/install-deps.sh

build: deps
	$(MVNW) -q install -DskipTests

## The whole test suite: unit tests, kernel integration tests (root), BPF program tests, and the
## Python example's own tests (its handoff client; -B: no __pycache__ in the tree).
test: deps
	$(MAKE) -C bpf test
	cd examples/python && python3 -B -m unittest -q
	$(FDS) && $(MVNW) verify

## Migrates a live curl stream between two namespaces and prints what happened.
demo: deps
	$(MVNW) -q install -DskipTests -Dspotless.check.skip=true
	$(FDS) && $(MVNW) -q -pl e2e exec:exec

## Per-socket export and restore time over 10,000 sockets, and encoded state size.
bench-repair: deps
	$(MVNW) -q install -DskipTests -Dspotless.check.skip=true
	$(FDS) && $(MVNW) -q -pl e2e exec:exec -Dferry.main=dev.ferry.e2e.RepairBenchmark -Dferry.args="$(or $(ARGS),--sockets 10000)"

## Holds N connections with the eBPF hold for a while, then moves them; prints resume latency.
bench-hold: deps
	$(MVNW) -q install -DskipTests -Dspotless.check.skip=true
	$(FDS) && $(MVNW) -q -pl e2e exec:exec -Dferry.main=dev.ferry.e2e.HoldBenchmark -Dferry.args="$(or $(ARGS),--connections 1000 --hold-seconds 60)"

## Moves a client uploading at a paced rate, with and without the held bytes put into the
## restored socket; prints when the client's stall ended against the resume.
.PHONY: bench-upload
bench-upload: deps
	$(MVNW) -q install -DskipTests -Dspotless.check.skip=true
	$(FDS) && $(MVNW) -q -pl e2e exec:exec -Dferry.main=dev.ferry.e2e.UploadBenchmark -Dferry.args="$(ARGS)"

## Moves 1 to 10,000 live SSE streams between two agents; compares with reconnecting and with CRIU.
## Then the AWS path beside the L2 path through the operator, at each EC2 delay (bench-aws).
.PHONY: bench
bench: deps
	$(MVNW) -q install -DskipTests -Dspotless.check.skip=true
	$(FDS) && $(MVNW) -q -pl e2e exec:exec -Dferry.main=dev.ferry.e2e.bench.MigrationBenchmark -Dferry.args="$(or $(ARGS),$(BENCH_ARGS))"
	$(FDS) && $(MVNW) -q -pl e2e exec:exec -Dferry.main=dev.ferry.e2e.AwsPathBenchmark -Dferry.args="$(AWS_ARGS)"

## A stream moved by the operator over the AWS path (EC2 delivering the address after 3 s, 30 s)
## and over the L2 path: the client's stall on each. AWS_ARGS="--delays 3,30 --runs 3".
.PHONY: bench-aws
bench-aws: deps
	$(MVNW) -q install -DskipTests -Dspotless.check.skip=true
	$(FDS) && $(MVNW) -q -pl e2e exec:exec -Dferry.main=dev.ferry.e2e.AwsPathBenchmark -Dferry.args="$(AWS_ARGS)"

## A download behind a 20 ms, 100 Mbit/s link moved at full speed: time back to 90 % of its
## rate, with and without the congestion state carried and the client's last ACK handed on,
## beside CRIU. ARGS="--runs 5 [--hold-ms 100] [--notsent-lowat 16384]".
.PHONY: bench-link
bench-link: deps
	$(MVNW) -q install -DskipTests -Dspotless.check.skip=true
	$(FDS) && $(MVNW) -q -pl e2e exec:exec -Dferry.main=dev.ferry.e2e.bench.LinkBenchmark -Dferry.args="$(ARGS)"

## What one trivial call on an agent costs over the API's mutual TLS, on a warm channel.
.PHONY: bench-calls
bench-calls: deps
	$(MVNW) -q install -DskipTests -Dspotless.check.skip=true
	$(FDS) && $(MVNW) -q -pl e2e exec:exec -Dferry.main=dev.ferry.e2e.bench.CallLatency

## The operator at scale, against the test API server and simulated agents (no kernel work):
## 200 nodes, 100 and 1,000 MigrationRequests at once. ARGS="--requests 1000 --per-cluster 50".
.PHONY: bench-operator
bench-operator: deps
	$(MVNW) -q install -DskipTests -Dspotless.check.skip=true
	$(FDS) && $(MVNW) -q -pl e2e exec:exec -Dferry.main=dev.ferry.e2e.bench.OperatorScale -Dferry.args="$(ARGS)"

## Regenerates crds/ from the Java types in api/ (dev.ferry.api.crd); commit the result.
crds: deps
	FERRY_WRITE_CRDS=1 $(MVNW) -q -pl api test -Dtest=CrdsAreCurrentTest -Dspotless.check.skip=true
	cp crds/*.yml helm/ferry/crds/

format:
	$(MVNW) -q spotless:apply

clean:
	$(MVNW) -q clean
