// Splitting text at special tokens before BPE: user-defined pieces are always matched whole; control (and unknown)
// pieces only when parsing special tokens, so user text cannot inject `<start_of_turn>` unless asked to.
// Follows llama.cpp's tokenizer_st_partition (llama-vocab.cpp): candidates are taken longest first (ties by id),
// and each one splits every remaining plain-text fragment at its leftmost non-overlapping occurrences. We find all
// occurrences with a trie, then replay that order, which gives the same fragments without scanning the
// text once per special token.

/// A piece of the input: plain text to run through BPE, or a special token matched whole.
enum Fragment: Equatable {
    case text(Range<Int>)
    case token(TokenID)
}

/// A byte trie of the special pieces, with their priority.
struct SpecialTokenMatcher: Sendable {
    /// One candidate: a control, unknown or user-defined piece.
    struct Candidate: Sendable {
        let id: TokenID
        let length: Int
        /// Control and unknown pieces match only when parsing special tokens; user-defined ones always.
        let needsParseSpecial: Bool
    }

    /// Candidates in llama.cpp's order: longest piece first, then lower id.
    let candidates: [Candidate]
    /// Trie nodes: the byte on the edge into the node, first child, next sibling, and candidate rank ending here.
    let nodeByte: [UInt8]
    let firstChild: [Int]
    let nextSibling: [Int]
    let terminal: [Int]
    /// The child of the root for each byte, or -1.
    let rootChild: [Int]

    init(vocabulary: Vocabulary) {
        var candidates: [Candidate] = []
        for (i, type) in vocabulary.types.enumerated() {
            let length = vocabulary.pieces[i].utf8.count
            guard length > 0 else { continue }
            switch type {
            case .control, .unknown:
                candidates.append(Candidate(id: TokenID(i), length: length, needsParseSpecial: true))
            case .userDefined:
                candidates.append(Candidate(id: TokenID(i), length: length, needsParseSpecial: false))
            case .normal, .unused, .byte:
                break
            }
        }
        candidates.sort { $0.length != $1.length ? $0.length > $1.length : $0.id < $1.id }

        var nodeByte: [UInt8] = [0], firstChild = [-1], nextSibling = [-1], terminal = [-1]
        var rootChild = [Int](repeating: -1, count: 256)
        for (rank, candidate) in candidates.enumerated() {
            var node = 0
            for byte in vocabulary.pieces[Int(candidate.id)].utf8 {
                var child = node == 0 ? rootChild[Int(byte)] : firstChild[node]
                if node != 0 {
                    while child >= 0 && nodeByte[child] != byte { child = nextSibling[child] }
                }
                if child < 0 {
                    child = nodeByte.count
                    nodeByte.append(byte)
                    firstChild.append(-1)
                    terminal.append(-1)
                    if node == 0 {
                        nextSibling.append(-1)
                        rootChild[Int(byte)] = child
                    } else {
                        nextSibling.append(firstChild[node])
                        firstChild[node] = child
                    }
                }
                node = child
            }
            // The same piece twice: keep the first in priority order (the later one could never match).
            if terminal[node] < 0 { terminal[node] = rank }
        }
        self.candidates = candidates
        self.nodeByte = nodeByte
        self.firstChild = firstChild
        self.nextSibling = nextSibling
        self.terminal = terminal
        self.rootChild = rootChild
    }

    /// Splits `text` into plain-text fragments and special tokens, in text order.
    func split(_ text: UnsafeBufferPointer<UInt8>, parseSpecial: Bool) -> [Fragment] {
        // Bucket every occurrence of every eligible candidate by rank (two passes: count, then fill), each bucket
        // in text order, which is llama.cpp's order: candidate by candidate, each left to right.
        var bucketStart = [Int](repeating: 0, count: candidates.count + 1)
        forEachOccurrence(in: text, parseSpecial: parseSpecial) { rank, _ in bucketStart[rank + 1] += 1 }
        for rank in 0..<candidates.count { bucketStart[rank + 1] += bucketStart[rank] }
        let total = bucketStart[candidates.count]
        guard total > 0 else { return text.isEmpty ? [] : [.text(0..<text.count)] }
        var positions = [Int](repeating: 0, count: total)
        var fill = bucketStart
        forEachOccurrence(in: text, parseSpecial: parseSpecial) { rank, start in
            positions[fill[rank]] = start
            fill[rank] += 1
        }

        // Take each occurrence that lies wholly in text no earlier choice has claimed. Earlier choices are at least
        // as long, so one that overlaps [start, end) covers its first or its last byte.
        var taken = [Bool](repeating: false, count: text.count)
        var chosen: [(start: Int, length: Int, id: TokenID)] = []
        for rank in 0..<candidates.count where bucketStart[rank] < bucketStart[rank + 1] {
            let candidate = candidates[rank]
            for start in positions[bucketStart[rank]..<bucketStart[rank + 1]] {
                let end = start + candidate.length
                guard !taken[start] && !taken[end - 1] else { continue }
                for i in start..<end { taken[i] = true }
                chosen.append((start, candidate.length, candidate.id))
            }
        }
        chosen.sort { $0.start < $1.start }

        var fragments: [Fragment] = []
        fragments.reserveCapacity(2 * chosen.count + 1)
        var position = 0
        for match in chosen {
            if match.start > position { fragments.append(.text(position..<match.start)) }
            fragments.append(.token(match.id))
            position = match.start + match.length
        }
        if position < text.count { fragments.append(.text(position..<text.count)) }
        return fragments
    }

    /// Calls `body(rank, start)` for every eligible candidate occurring in `text`, by increasing start.
    @inline(__always)
    private func forEachOccurrence(
        in text: UnsafeBufferPointer<UInt8>, parseSpecial: Bool, _ body: (Int, Int) -> Void
    ) {
        nodeByte.withUnsafeBufferPointer { nodeByte in
            firstChild.withUnsafeBufferPointer { firstChild in
                nextSibling.withUnsafeBufferPointer { nextSibling in
                    terminal.withUnsafeBufferPointer { terminal in
                        rootChild.withUnsafeBufferPointer { rootChild in
                            candidates.withUnsafeBufferPointer { candidates in
                                for start in 0..<text.count {
                                    var node = rootChild[Int(text[start])]
                                    var k = start + 1
                                    while node >= 0 {
                                        let rank = terminal[node]
                                        if rank >= 0 && (parseSpecial || !candidates[rank].needsParseSpecial) {
                                            body(rank, start)
                                        }
                                        guard k < text.count else { break }
                                        let byte = text[k]
                                        var child = firstChild[node]
                                        while child >= 0 && nodeByte[child] != byte { child = nextSibling[child] }
                                        node = child
                                        k += 1
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}
