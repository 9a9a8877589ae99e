# Sourced by the scripts: one set of build flags, so that every entry point shares one release build.
# CPU-specific code generation is switched on here (not with unsafeFlags in Package.swift).
SWIFT_FLAGS=(-c release -Xswiftc -target-cpu -Xswiftc native)
GEMMA_BIN=".build/release/gemma"
