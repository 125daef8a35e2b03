# The two commands a newcomer needs: `make run` and `make test`.
GO      ?= go
BIN     := bin/voicemail
VERSION := $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
REVISION := $(shell git rev-parse HEAD 2>/dev/null)
LDFLAGS := -X main.version=$(VERSION) -X main.revision=$(REVISION)
DATA    ?= ./data

.PHONY: all build run test unit e2e bench load vet fmt pcaps prompts docs clean chart chart-test fuzz docs-screenshots tools

all: build

build:
	$(GO) build -ldflags "$(LDFLAGS)" -o $(BIN) ./cmd/voicemail

# The server on its embedded defaults (SQLite + ./data), demo tenant and
# mailboxes, everything on loopback.
run: build
	$(BIN) serve --demo --data-dir $(DATA) \
		--sip-listen udp:127.0.0.1:5060,tcp:127.0.0.1:5060 \
		--sip-public-addr 127.0.0.1 --http-listen 127.0.0.1:8080 --log-format text

# Everything: formatting, vet, unit tests (race detector) and the end-to-end
# calls driven by sipp under testcalls/.
test: vet
	@test -z "$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go'))" || (echo "gofmt needed:"; gofmt -l .; exit 1)
	$(GO) test -race -count=1 $$($(GO) list ./... | grep -v /testcalls)
	$(GO) test -count=1 -timeout 15m ./testcalls/...
	$(MAKE) chart-test

unit:
	$(GO) test -race -count=1 $$($(GO) list ./... | grep -v /testcalls)

e2e:
	$(GO) test -count=1 -v -timeout 15m ./testcalls/...

bench:
	$(GO) test -run '^$$' -bench . -benchmem ./media/ ./sip/ ./ivr/

# Load runs for BENCHMARKS.md (not part of `make test`): server pinned to
# core 1, cmd/vmload or sipp to core 0, loopback; ~20 min. See
# testcalls/load/run.sh (LOAD=churn|plainchurn|sippchurn|crosscheck|deposit|dtmf|plain|setup|sipp|smoke, LEVELS=...).
load:
	testcalls/load/run.sh $(LOAD) $(LEVELS)

vet:
	$(GO) vet ./...

# Every fuzz target of every package (found with go test -list, so new
# ones are included), one after the other, FUZZTIME each. The committed
# corpora (testdata/fuzz/FuzzXxx) also run as plain tests in `make test`.
# A crasher is written to testdata/fuzz/FuzzXxx/: commit it as a seed.
FUZZTIME ?= 60s
FUZZPARALLEL ?= 2
fuzz:
	@set -e; for pkg in $$($(GO) list ./...); do \
	  for t in $$($(GO) test -list '^Fuzz' $$pkg | grep '^Fuzz' || true); do \
	    echo "== $$pkg $$t ($(FUZZTIME))"; \
	    $(GO) test -run '^$$' -fuzz "^$$t\$$" -fuzztime $(FUZZTIME) -parallel $(FUZZPARALLEL) $$pkg; \
	  done; \
	done

fmt:
	gofmt -w $$(git ls-files '*.go')

# Regenerate the key table of docs/configuration.md after changing config/.
# (`make test` runs the docs tests: ./docs and ./config fail when the manual
# and the code disagree, or a file still cites the old specification.)
docs:
	$(GO) test -count=1 ./config -run TestConfigurationDoc -update
	$(GO) test -count=1 ./docs ./config

# Regenerate the committed test pcaps and prompts.
pcaps:
	$(GO) run ./testcalls/mkpcap -out testcalls/pcap
	$(GO) run ./testcalls/mkdtmf -out testcalls/pcap

prompts:
	bash prompts/generate.sh

# The Helm chart ships a copy of the Kamailio configuration.
chart:
	cp deploy/kamailio/kamailio.cfg deploy/helm/voicemail/files/kamailio.cfg

# helm lint + helm template of every values variant, decoded strictly into
# the Kubernetes API types, and checked against `voicemail serve`'s own
# configuration loader (its own module: deploy/helm/test).
chart-test:
	cd deploy/helm/test && $(GO) test -count=1 ./...

# The README's pictures of the web console (docs/web-*.png), taken by the
# browser tests in headless Chromium.
docs-screenshots:
	UPDATE_DOCS=1 $(GO) test -count=1 -run 'TestWebInbox|TestWebAdmin' ./testcalls/

clean:
	rm -rf bin

# The servers the object storage tests start (docs/object-storage.md).
tools:
	$(GO) install github.com/versity/versitygw/cmd/versitygw@v1.8.0
	npm install -g --no-audit --no-fund azurite@3.37.0
