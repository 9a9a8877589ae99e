// What the benchmark executables (Benchmarks/*) share: `--name value` options taken out of the command line one by
// one, and a one-line error on standard error with exit status 2.
import Foundation

/// Prints `message` on standard error and exits with status 2.
public func fail(_ message: String) -> Never {
    FileHandle.standardError.write(Data((message + "\n").utf8))
    exit(2)
}

/// The command line's arguments; each option read is removed, so that what is left (`rest`) is the positional
/// arguments or unknown words.
public struct BenchArguments {
    public private(set) var rest = Array(CommandLine.arguments.dropFirst())

    public init() {}

    /// The value after `name`, or nil when `name` is absent.
    public mutating func option(_ name: String) -> String? {
        guard let i = rest.firstIndex(of: name) else { return nil }
        guard i + 1 < rest.count else { fail("\(name) needs a value") }
        defer { rest.removeSubrange(i...(i + 1)) }
        return rest[i + 1]
    }

    /// The positive integer after `name`, or nil when `name` is absent.
    public mutating func positiveInt(_ name: String) -> Int? {
        guard let s = option(name) else { return nil }
        guard let v = Int(s), v > 0 else { fail("\(name) needs a positive integer") }
        return v
    }

    /// Whether the flag `name` is given (removed).
    public mutating func flag(_ name: String) -> Bool {
        let given = rest.contains(name)
        rest.removeAll { $0 == name }
        return given
    }
}
