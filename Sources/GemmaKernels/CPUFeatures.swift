// What the CPU offers the kernels, read once. Builds target the CPU they run on (-target-cpu native), so a kernel
// written for one vector width is fast only where the CPU has it: the int16 GEMM's tile is 24 registers of 512 bits
// (GemmInt16.swift). On an AVX2-only CPU it compiles to halves that spill and ran 9x slower than the f32 GEMM (pp512
// 35 vs 307 tok/s, AMD EPYC Zen 3, 2 threads), so there prefill takes the f32 GEMM; the decode kernels for several
// activation rows at once (batched decoding) spill the same way, so there each row takes the one-row kernels.
#if canImport(Glibc)
import Glibc
#endif

package enum CPUFeatures {
    /// True when the CPU has AVX-512 BW (512-bit integer vectors), which the int16 GEMM's tile and the several-row
    /// decode kernels are written for. `GEMMA_AVX512=0` or `=1` overrides (benchmarks and tests of either path).
    package static let avx512: Bool = {
        if let v = getenv("GEMMA_AVX512") { return String(cString: v) != "0" }
        return cpuFlags().contains("avx512bw")
    }()

    /// AVX-512 VBMI (byte permutes across a 64-byte vector, vpmultishiftqb) with VNNI, DQ and BITALG (vpshufbitqmb): the decode kernels of
    /// CPUHints.h that unpack every integer format and decode SFP8 in registers (Ice Lake and later Intel Xeons, AMD
    /// Zen 4). `GEMMA_VBMI=0` turns them off (benchmarks and tests of the Swift path).
    package static let avx512vbmi: Bool = {
        if let v = getenv("GEMMA_VBMI") { return String(cString: v) != "0" }
        let f = cpuFlags()
        return avx512 && f.contains("avx512vbmi") && f.contains("avx512_vnni") && f.contains("avx512dq") && f.contains("avx512vl")
            && f.contains("avx512_bitalg") && f.contains("f16c")
    }()

    /// Bytes ahead of the weights being read at which the decode kernels of the layers' formats (Q5_0, Q4_K, Q6_K)
    /// prefetch: the layers' matrices come from DRAM every step (the head evicts them), and with the hardware prefetcher
    /// alone a 2-thread decode step read them at ~12-16 GB/s. 8 KB measured best of 0 / 2 / 8 / 16 KB (Xeon, 2 vCPUs).
    package static let weightPrefetchDistance = 8192

    /// The int16 GEMM is the fast prefill product (else the f32 GEMM).
    package static var int16Gemm: Bool { avx512 }

    /// The flags of the first processor in /proc/cpuinfo (empty where there is none).
    static func cpuFlags() -> Set<Substring> {
        #if os(Linux) && arch(x86_64)
        guard let f = fopen("/proc/cpuinfo", "r") else { return [] }
        defer { fclose(f) }
        var line: UnsafeMutablePointer<CChar>?
        var capacity = 0
        defer { free(line) }
        while getline(&line, &capacity, f) > 0 {
            let s = String(cString: line!)
            if s.hasPrefix("flags") {
                guard let colon = s.firstIndex(of: ":") else { return [] }
                return Set(s[s.index(after: colon)...].split(whereSeparator: { $0 == " " || $0 == "\n" || $0 == "\t" }))
            }
        }
        #endif
        return []
    }
}
