# swift-gemma entry points. Every target shares one release build tuned for this CPU (scripts/swift-flags.sh).
SHELL := /bin/bash
FLAGS := -c release -Xswiftc -target-cpu -Xswiftc native
GEMMA := .build/release/gemma

.PHONY: run build model test fixtures kernels bench clean

PROMPT ?= The history of the printing press
# Fetch the default model (once) and run the main job on it: a raw completion streamed to the terminal.
run: build model
	$(GEMMA) generate -n 96 "$(PROMPT)"

# Release build of the library and the gemma tool (installs the image decoders' Debian packages when missing).
build:
	@scripts/setup-system.sh
	swift build $(FLAGS) --product gemma

# Fetch Gemma 3 270M Q4_K_M into ~/.cache/swift-gemma (sha256-checked, never twice).
model:
	@scripts/fetch-model.sh

# The whole test suite (what CI runs): setup, model, reference data, release build, swift test, CLI checks.
test:
	scripts/test.sh

# Prompt-processing and generation speed on the default model (BENCH="-p 512 -n 128 -t 2" passes options).
bench: build model
	$(GEMMA) bench $(BENCH)

# Regenerate the generated kernel files (line 1 of each says so) from their templates in scripts/kernels;
# scripts/check-generated.sh (run by make test) checks that the committed files are what this makes.
kernels:
	python3 scripts/kernels/gemm_int16/tr.py > /dev/null
	python3 scripts/kernels/gemm_int16/gen.py
	python3 scripts/kernels/gen_row_kernels.py

# Regenerate the gguf-py reference fixtures.
fixtures:
	scripts/setup.sh && python3 scripts/make_quant_fixtures.py

clean:
	rm -rf .build Tests/Fixtures/generated
