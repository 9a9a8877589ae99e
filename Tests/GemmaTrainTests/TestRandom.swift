// Deterministic random numbers for the training tests' weights and targets (a 64-bit LCG: the same values on every
// machine, so the tests' thresholds hold everywhere).
import Foundation

struct TestRandom {
    var state: UInt64

    init(seed: UInt64) { state = seed }

    /// In (0, 1), 53 bits.
    mutating func unit() -> Double {
        state = state &* 6364136223846793005 &+ 1442695040888963407
        return (Double(state >> 11) + 0.5) / Double(1 << 53)
    }

    /// In [0, 1), 24 bits.
    mutating func unitFloat() -> Float {
        state = state &* 6364136223846793005 &+ 1442695040888963407
        return Float(state >> 40) / Float(1 << 24)
    }

    /// Standard normal (Box-Muller).
    mutating func gaussian() -> Float {
        let a = unit(), b = unit()
        return Float((-2 * log(a)).squareRoot() * cos(2 * .pi * b))
    }
}
