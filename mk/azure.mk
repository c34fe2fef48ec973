# The azure provider's tests: Azurite (Azure Storage's emulator) from npm, into .cache/azurite/. Debian's
# nodejs and npm are installed only when no npm is on PATH.
AZURITE_VERSION := 3.35.0
AZURITE_BIN := .cache/azurite/node_modules/.bin/azurite-blob

.PHONY: azure-test-deps
test-deps: azure-test-deps

azure-test-deps: | $(STAMPS)
	@if ! command -v npm >/dev/null 2>&1; then \
	  echo "installing Debian packages: nodejs npm"; SUDO=""; [ "$$(id -u)" = 0 ] || SUDO=sudo; \
	  [ -f $(STAMPS)/apt-updated ] || { $$SUDO apt-get update -qq && touch $(STAMPS)/apt-updated; }; \
	  DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq nodejs npm >/dev/null; fi
	@test -x $(AZURITE_BIN) || { echo "installing Azurite $(AZURITE_VERSION) from npm"; mkdir -p .cache/azurite && \
	  npm install --prefix .cache/azurite --no-audit --no-fund --silent azurite@$(AZURITE_VERSION) >/dev/null; }
