// Where a constrained generation stands in its grammar, and which tokens may come next.
//
// A position in the grammar is a stack of element indices (the element to match, then where to continue after each
// enclosing rule), interned as linked nodes (position, parent) so that a stack is one Int32 and pushing never copies.
// A state is the set of stacks the text so far can be in, each with a character set on top (-1: the grammar has
// ended). Reading a scalar keeps the stacks whose set holds it and expands each past its set (popping finished rules,
// pushing referenced ones); that expansion is cached per stack, so after warm-up a step is a set test and a lookup.
//
// The mask of a state walks the token trie depth-first, carrying the state down each prefix and skipping a whole
// subtree as soon as no stack survives: tokens the grammar rejects at their first character cost one test. Masks are
// cached by state, since JSON revisits the same states (every character inside a free string is one state).
// Stacks, expansions and masks live in a `GrammarIndex` that every generation under one `TokenConstraint` shares
// (behind a lock), so a server answering the same schema again starts warm; a matcher is the index and its state.

import Synchronization

/// The shared tables of one grammar over one vocabulary: interned stacks, expansions, masks.
struct GrammarEngine {
    let grammar: Grammar
    let trie: TokenTrie
    /// Interned stacks: node s is (position[s], parent[s]); parent -1 is the empty stack below.
    private var position: [Int32] = []
    private var parent: [Int32] = []
    private var intern: [UInt64: Int32] = [:]
    /// Successors of a stack whose top set matched: flat lists, computed on first use (start -1).
    private var successorStart: [Int32] = []
    private var successorCount: [Int32] = []
    private var successors: [Int32] = []
    /// The start state: stack ids, sorted, -1 for "ended".
    private(set) var start: [Int32] = []
    private var masks: [[Int32]: TokenMask] = [:]
    /// Scratch of `mask`: the state at each depth of the trie walk.
    private var arena: [Int32] = []
    private var mark: [UInt32] = []
    private var epoch: UInt32 = 0
    /// Masks kept (32 KiB each for 262,144 tokens).
    static let cachedMasks = 256

    init(_ grammar: Grammar, trie: TokenTrie) {
        self.grammar = grammar
        self.trie = trie
        var s: [Int32] = []
        for a in grammar.alternatives[grammar.root] { expand(a, -1, into: &s) }
        start = normalized(s)
    }

    // MARK: stacks

    private mutating func node(_ pos: Int32, _ up: Int32) -> Int32 {
        let key = UInt64(UInt32(bitPattern: pos)) << 32 | UInt64(UInt32(bitPattern: up))
        if let s = intern[key] { return s }
        let s = Int32(position.count)
        position.append(pos)
        parent.append(up)
        successorStart.append(-1)
        successorCount.append(0)
        mark.append(0)
        intern[key] = s
        return s
    }

    /// Stacks one state may hold. An ambiguous grammar can double them per character; past this the extra ones are
    /// dropped (the grammar then allows less, never more: the output still matches it).
    static let maxStacks = 4096

    /// The stacks that continue at element `pos` over stack `up`, with a set on top (or -1: ended).
    private mutating func expand(_ pos: Int32, _ up: Int32, into out: inout [Int32], depth: Int = 0) {
        // Chains of references recurse; a hostile grammar's chain is cut (its stacks dropped) before the stack runs out.
        guard out.count < Self.maxStacks, depth < 4000 else { return }
        switch grammar.kinds[Int(pos)] {
        case .set:
            out.append(node(pos, up))
        case .end:
            if up < 0 { out.append(-1) } else { expand(position[Int(up)], parent[Int(up)], into: &out, depth: depth + 1) }
        case .rule:
            // A reference in tail position returns straight to `up` (no frame to come back to): right recursion
            // (x* is x R | empty) then keeps one stack instead of one more frame per repetition, so states repeat.
            let cont = grammar.kinds[Int(pos) + 1] == .end ? up : node(pos + 1, up)
            for a in grammar.alternatives[Int(grammar.args[Int(pos)])] { expand(a, cont, into: &out, depth: depth + 1) }
        }
    }

    func normalized(_ s: [Int32]) -> [Int32] { Array(Set(s)).sorted() }

    /// Successors of stack `s` once its top set has matched.
    @inline(__always) private mutating func after(_ s: Int32) -> Range<Int> {
        if successorStart[Int(s)] < 0 {
            var out: [Int32] = []
            expand(position[Int(s)] + 1, parent[Int(s)], into: &out)
            successorStart[Int(s)] = Int32(successors.count)
            successorCount[Int(s)] = Int32(out.count)
            successors += out
        }
        let a = Int(successorStart[Int(s)])
        return a..<(a + Int(successorCount[Int(s)]))
    }

    @inline(__always) private func matches(_ s: Int32, _ c: UInt32) -> Bool {
        grammar.charSets[Int(grammar.args[Int(position[Int(s)])])].contains(c)
    }

    /// The state after reading `c` from the state in arena[range] (unsorted, without duplicates), appended to the
    /// arena.
    @inline(__always) private mutating func stepArena(_ range: Range<Int>, _ c: UInt32) {
        epoch &+= 1
        if epoch == 0 { for i in mark.indices { mark[i] = 0 }; epoch = 1 }
        var endSeen = false
        let limit = arena.count + Self.maxStacks
        for k in range {
            if arena.count >= limit { break }
            let s = arena[k]
            guard s >= 0 && matches(s, c) else { continue }
            for j in after(s) {
                let t = successors[j]
                if t < 0 {
                    if !endSeen { endSeen = true; arena.append(-1) }
                } else if mark[Int(t)] != epoch {
                    mark[Int(t)] = epoch
                    arena.append(t)
                }
            }
        }
    }

    // MARK: tokens

    /// Reads `scalars` from `state` in the arena: the range of the arena holding the state after them, or nil when
    /// they do not fit.
    private mutating func walk<S: Sequence<UInt32>>(_ state: [Int32], _ scalars: S) -> Range<Int>? {
        arena.removeAll(keepingCapacity: true)
        arena += state
        var from = 0..<arena.count
        for c in scalars {
            let at = arena.count
            stepArena(from, c)
            if arena.count == at { return nil }
            from = at..<arena.count
        }
        return from
    }

    /// Whether token `t` may follow `state` (stop tokens are the caller's).
    mutating func allows(_ t: Int, after state: [Int32]) -> Bool {
        let r = trie.scalars(of: t)
        guard !r.isEmpty else { return false }
        let trie = self.trie
        return walk(state, r.lazy.map { trie.flat[$0] }) != nil
    }

    /// The state after the scalars, or nil when they do not fit.
    mutating func advance<S: Sequence<UInt32>>(_ state: [Int32], _ scalars: S) -> [Int32]? {
        guard let r = walk(state, scalars) else { return nil }
        return normalized(Array(arena[r]))
    }

    func hasMask(_ state: [Int32]) -> Bool { masks[state] != nil }

    /// The tokens allowed after `state` (stop tokens excluded).
    mutating func mask(_ state: [Int32]) -> TokenMask {
        if let m = masks[state] { return m }
        var bits = [UInt64](repeating: 0, count: (trie.vocabularySize + 63) / 64)
        let depthCount = trie.maxDepth + 1
        var start = [Int](repeating: 0, count: depthCount + 1), end = start
        arena.removeAll(keepingCapacity: true)
        arena += state
        end[0] = arena.count
        // The first characters the state can read: when no stack's set is negated, only the root's children in
        // those ranges are walked (a key, a digit, a bracket: a few subtrees instead of every first character).
        var firsts: [ClosedRange<UInt32>]? = []
        for s in state where s >= 0 {
            let cs = grammar.charSets[Int(grammar.args[Int(position[Int(s)])])]
            if cs.negated { firsts = nil; break }
            for c in 0..<UInt32(128) where cs.contains(c) { firsts!.append(c...c) }
            firsts! += cs.ranges
        }
        var walks: [Range<Int>] = []
        if let firsts {
            let roots = trie.rootChildren
            for r in firsts.sorted(by: { $0.lowerBound < $1.lowerBound }) {
                var lo = 0, hi = roots.count  // first root child with scalar >= r.lowerBound
                while lo < hi {
                    let mid = (lo + hi) / 2
                    if trie.scalar[Int(roots[mid])] < r.lowerBound { lo = mid + 1 } else { hi = mid }
                }
                var j = lo
                while j < roots.count && trie.scalar[Int(roots[j])] <= r.upperBound {
                    let node = Int(roots[j])
                    if let last = walks.last, last.upperBound == node { walks[walks.count - 1] = last.lowerBound..<Int(trie.subtreeEnd[node]) }
                    else if walks.last.map({ $0.contains(node) }) != true { walks.append(node..<Int(trie.subtreeEnd[node])) }
                    j += 1
                }
            }
        } else {
            walks = [0..<trie.scalar.count]
        }
        bits.withUnsafeMutableBufferPointer { b in
            for w in walks {
                var i = w.lowerBound
                while i < w.upperBound {
                    let d = Int(trie.depth[i])
                    arena.removeLast(arena.count - end[d - 1])
                    start[d] = arena.count
                    stepArena(start[d - 1]..<end[d - 1], trie.scalar[i])
                    end[d] = arena.count
                    if end[d] == start[d] {
                        i = Int(trie.subtreeEnd[i])
                        continue
                    }
                    for k in Int(trie.tokenStart[i])..<Int(trie.tokenStart[i + 1]) {
                        let t = Int(trie.tokenIDs[k])
                        b[t >> 6] |= 1 << UInt64(t & 63)
                    }
                    i += 1
                }
            }
        }
        let m = TokenMask(bits: bits)
        if masks.count >= Self.cachedMasks { masks.removeAll(keepingCapacity: true) }
        masks[state] = m
        return m
    }
}

/// The tokens a grammar allows next: the ids themselves when they are few (most states: a key, a digit, a
/// bracket), else a bitset over the vocabulary. One or the other is kept, so a cached mask costs its ids or 32 KiB.
public struct TokenMask: Sendable {
    /// The bitset (empty when `ids` is set).
    public let bits: [UInt64]
    /// The allowed ids in increasing order when there are at most `sparseLimit` of them.
    public let ids: [Int32]?
    public static let sparseLimit = 4096

    init(bits: [UInt64]) {
        var n = 0
        for w in bits { n += w.nonzeroBitCount }
        if n <= Self.sparseLimit {
            var ids: [Int32] = []
            ids.reserveCapacity(n)
            for (i, w) in bits.enumerated() where w != 0 {
                var x = w
                while x != 0 {
                    ids.append(Int32(i * 64 + x.trailingZeroBitCount))
                    x &= x - 1
                }
            }
            self.ids = ids
            self.bits = []
        } else {
            ids = nil
            self.bits = bits
        }
    }

    public func contains(_ t: Int) -> Bool {
        if let ids {
            var lo = 0, hi = ids.count
            while lo < hi {
                let mid = (lo + hi) / 2
                if Int(ids[mid]) < t { lo = mid + 1 } else { hi = mid }
            }
            return lo < ids.count && Int(ids[lo]) == t
        }
        return t >= 0 && t >> 6 < bits.count && bits[t >> 6] >> UInt64(t & 63) & 1 == 1
    }
}

/// A grammar's tables shared by every generation under one `TokenConstraint` (behind a lock).
public final class GrammarIndex: Sendable {
    let engine: Mutex<GrammarEngine>
    let start: [Int32]

    public init(_ grammar: Grammar, trie: TokenTrie) {
        let e = GrammarEngine(grammar, trie: trie)
        start = e.start
        engine = Mutex(e)
    }
}

/// One constrained generation's place in its grammar.
public struct GrammarMatcher: Sendable {
    public let index: GrammarIndex
    /// The current state: stack ids, sorted, -1 for "ended".
    public private(set) var state: [Int32]

    public init(_ index: GrammarIndex) {
        self.index = index
        state = index.start
    }

    /// A matcher with a private index (tests, one-off checks).
    public init(_ grammar: Grammar, trie: TokenTrie) { self.init(GrammarIndex(grammar, trie: trie)) }

    /// True when the text so far is a complete sentence of the grammar (a stop token may end it here).
    public var canEnd: Bool { state.first == -1 }
    /// True when nothing can follow: only ending is possible.
    public var mustEnd: Bool { state == [-1] }

    /// Whether token `t` may come next (stop tokens are the caller's: see `canEnd`).
    public func allows(_ t: Int) -> Bool { index.engine.withLock { $0.allows(t, after: state) } }

    /// Moves past token `t`. Returns false (and leaves the state alone) when the grammar does not allow it.
    @discardableResult
    public mutating func accept(_ t: Int) -> Bool {
        let s = state
        let next: [Int32]? = index.engine.withLock { e in
            let r = e.trie.scalars(of: t)
            guard !r.isEmpty else { return nil }
            let trie = e.trie
            return e.advance(s, r.lazy.map { trie.flat[$0] })
        }
        guard let next else { return false }
        state = next
        return true
    }

    /// Moves past text (for a grammar that continues a prefix already in the prompt). False if it does not fit.
    @discardableResult
    public mutating func accept(text: String) -> Bool {
        let s = state
        guard let next = index.engine.withLock({ $0.advance(s, text.unicodeScalars.map(\.value)) }) else { return false }
        state = next
        return true
    }

    /// The tokens allowed now (stop tokens excluded).
    public func mask() -> TokenMask { index.engine.withLock { $0.mask(state) } }

    /// Whether the mask of the current state is already computed (then `mask()` is a lookup).
    public var hasMask: Bool { index.engine.withLock { $0.hasMask(state) } }
}
