// Every token's text as Unicode scalars, in one prefix tree laid out in preorder: node i's subtree is the nodes
// i..<subtreeEnd[i], so a walk that finds no grammar state can follow a prefix skips everything below it in one
// jump. Built once per vocabulary and shared by every constrained generation.

/// The vocabulary as a prefix tree of Unicode scalars, for grammar masks.
public final class TokenTrie: Sendable {
    /// Logit rows the masks cover (the vocabulary, padded ids included).
    public let vocabularySize: Int
    let scalar: [UInt32]
    let depth: [UInt16]
    let subtreeEnd: [Int32]
    /// Tokens ending at node i: tokenIDs[tokenStart[i]..<tokenStart[i + 1]].
    let tokenStart: [Int32]
    let tokenIDs: [Int32]
    /// Each token's scalars: flat[offsets[t]..<offsets[t + 1]] (empty: never allowed under a grammar).
    let offsets: [Int32]
    let flat: [UInt32]
    /// The deepest node.
    let maxDepth: Int
    /// The nodes of depth 1 (first characters), in scalar order.
    let rootChildren: [Int32]
    /// Nodes in the tree.
    public var nodeCount: Int { scalar.count }

    /// - Parameter tokens: Each token id's bytes as it decodes (nil, empty or not whole UTF-8 characters: the token
    ///   is never allowed while a grammar constrains the output; control tokens such as `<end_of_turn>` are handled
    ///   by the stop rule, not by the tree).
    public init(tokens: [[UInt8]?]) {
        vocabularySize = tokens.count
        var offsets: [Int32] = [0]
        var flat: [UInt32] = []
        offsets.reserveCapacity(tokens.count + 1)
        for bytes in tokens {
            if let bytes, !bytes.isEmpty, let s = String(validating: bytes, as: UTF8.self) {
                flat.append(contentsOf: s.unicodeScalars.map(\.value))
            }
            offsets.append(Int32(flat.count))
        }
        self.offsets = offsets
        self.flat = flat
        // Tokens sorted by their scalars, then a preorder tree from shared prefixes.
        var order = (0..<tokens.count).filter { offsets[$0 + 1] > offsets[$0] }.map { Int32($0) }
        flat.withUnsafeBufferPointer { f in
            order.sort { a, b in
                let a0 = Int(offsets[Int(a)]), a1 = Int(offsets[Int(a) + 1]), b0 = Int(offsets[Int(b)]), b1 = Int(offsets[Int(b) + 1])
                var i = 0
                while a0 + i < a1 && b0 + i < b1 {
                    if f[a0 + i] != f[b0 + i] { return f[a0 + i] < f[b0 + i] }
                    i += 1
                }
                return a1 - a0 != b1 - b0 ? a1 - a0 < b1 - b0 : a < b
            }
        }
        var scalar: [UInt32] = [], depth: [UInt16] = [], nodeOfToken: [Int32] = []
        var path: [Int32] = []  // node at each depth along the last token's spelling
        var previous: Int32 = -1
        for t in order {
            let s0 = Int(offsets[Int(t)]), s1 = Int(offsets[Int(t) + 1])
            var common = 0
            if previous >= 0 {
                let p0 = Int(offsets[Int(previous)]), p1 = Int(offsets[Int(previous) + 1])
                while common < min(s1 - s0, p1 - p0) && flat[s0 + common] == flat[p0 + common] { common += 1 }
            }
            path.removeLast(path.count - common)
            for k in common..<(s1 - s0) {
                path.append(Int32(scalar.count))
                scalar.append(flat[s0 + k])
                depth.append(UInt16(min(k + 1, Int(UInt16.max))))
            }
            nodeOfToken.append(path.last!)
            previous = t
        }
        // Subtree ends: the next node at the same depth or shallower.
        var subtreeEnd = [Int32](repeating: Int32(scalar.count), count: scalar.count)
        var open: [Int32] = []
        for i in 0..<scalar.count {
            while let top = open.last, depth[Int(top)] >= depth[i] { subtreeEnd[Int(top)] = Int32(i); open.removeLast() }
            open.append(Int32(i))
        }
        // Tokens per node (CSR), in id order within a node.
        var counts = [Int32](repeating: 0, count: scalar.count + 1)
        for n in nodeOfToken { counts[Int(n) + 1] += 1 }
        for i in 0..<scalar.count { counts[i + 1] += counts[i] }
        var fill = counts
        var ids = [Int32](repeating: 0, count: order.count)
        for (t, n) in zip(order, nodeOfToken) {
            ids[Int(fill[Int(n)])] = t
            fill[Int(n)] += 1
        }
        self.scalar = scalar
        self.depth = depth
        self.subtreeEnd = subtreeEnd
        tokenStart = counts
        tokenIDs = ids
        maxDepth = Int(depth.max() ?? 0)
        rootChildren = depth.indices.filter { depth[$0] == 1 }.map { Int32($0) }
    }

    /// The scalars of token `t` (empty when it is never allowed).
    @inline(__always) func scalars(of t: Int) -> Range<Int> {
        guard t >= 0 && t < vocabularySize else { return 0..<0 }
        return Int(offsets[t])..<Int(offsets[t + 1])
    }
}

/// A grammar bound to a vocabulary's trie: what a generation is constrained by (`GenerationParameters.constraint`).
/// Generations under one constraint value share its `GrammarIndex` (stacks, expansions and masks computed once).
public struct TokenConstraint: Sendable, Equatable {
    public let grammar: Grammar
    public let trie: TokenTrie
    public let index: GrammarIndex

    public init(grammar: Grammar, trie: TokenTrie) {
        self.grammar = grammar
        self.trie = trie
        index = GrammarIndex(grammar, trie: trie)
    }

    public static func == (a: TokenConstraint, b: TokenConstraint) -> Bool { a.trie === b.trie && a.grammar == b.grammar }
}
