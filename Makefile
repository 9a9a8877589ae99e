# swift-gemma entry points. Every target shares one release build tuned for this CPU (scripts/swift-flags.sh).
SHELL := /bin/bash
FLAGS := -c release -Xswiftc -target-cpu -Xswiftc native
GEMMA := .build/release/gemma

.PHONY: run build model test fixtures clean

PROMPT ?= The history of the printing press
# Fetch the default model (once) and run the main job on it: a raw completion streamed to the terminal.
run: build model
	$(GEMMA) generate -n 96 "$(PROMPT)"

# Release build of the library and the gemma tool.
build:
	swift build $(FLAGS) --product gemma

# Fetch Gemma 3 270M Q4_K_M into ~/.cache/swift-gemma (sha256-checked, never twice).
model:
	@scripts/fetch-model.sh

# The whole test suite (what CI runs): setup, model, reference data, release build, swift test, CLI checks.
test:
	scripts/test.sh

# Regenerate the gguf-py reference fixtures.
fixtures:
	scripts/setup.sh && python3 scripts/make_quant_fixtures.py

clean:
	rm -rf .build Tests/Fixtures/generated
