// SentencePiece BPE over one text fragment: split into UTF-8 characters, then repeatedly merge the adjacent pair
// whose concatenation is the best-scoring piece (ties: leftmost), and spell characters with no piece as byte
// tokens. Follows llama.cpp's llm_tokenizer_spm_session (llama-vocab.cpp), which reproduces sentencepiece's
// bpe_model.cc; the work queue is a binary heap with stale entries skipped on pop.

/// The merge tables of a vocabulary, built once.
struct SentencePieceEncoder: Sendable {
    let index: PieceIndex
    let scores: [Float]
    /// Whether a piece may be produced by merging or stand for a single character: normal and user-defined pieces.
    /// Control, unknown, unused and byte pieces never come from plain text (llama.cpp looks up every piece, but
    /// in Gemma's vocabulary no control or byte piece is reachable by merges, so the results are the same).
    let mergeable: [Bool]
    /// The token for each byte value: its `<0xXX>` piece, else the unknown token, else -1 (checked at build).
    let byteTokens: [TokenID]
    /// The mergeable piece spelled by two "short" characters (ASCII, or U+2581 as number 128), or -1, at
    /// `first * 129 + second`, and by one at `129 * 129 + first`: most first-round lookups in Latin-script text,
    /// answered without hashing into the multi-megabyte piece index.
    let pairs: [Int32]

    init(index: PieceIndex, scores: [Float], mergeable: [Bool], byteTokens: [TokenID]) {
        self.index = index
        self.scores = scores
        self.mergeable = mergeable
        self.byteTokens = byteTokens
        var pairs = [Int32](repeating: -1, count: 129 * 129 + 129)
        var key = [UInt8](repeating: 0, count: 6)
        index.withView { view in
            key.withUnsafeMutableBufferPointer { key in
                // Writes short character `c` at key[at...] and returns the end.
                func spell(_ c: Int, at start: Int) -> Int {
                    if c < 128 {
                        key[start] = UInt8(c)
                        return start + 1
                    }
                    key[start] = 0xE2
                    key[start + 1] = 0x96
                    key[start + 2] = 0x81
                    return start + 3
                }
                func mergeableID(_ count: Int) -> Int32 {
                    let id = view.lookup(UnsafeBufferPointer(rebasing: key[0..<count]))
                    return id >= 0 && mergeable[Int(id)] ? id : -1
                }
                for a in 0..<129 {
                    let middle = spell(a, at: 0)
                    pairs[129 * 129 + a] = mergeableID(middle)
                    for b in 0..<129 { pairs[a * 129 + b] = mergeableID(spell(b, at: middle)) }
                }
            }
        }
        self.pairs = pairs
    }

    /// The short-character number of the character at the start of `text[offset...]` spanning `length` bytes.
    @inline(__always)
    static func shortCharacter(_ text: UnsafeBufferPointer<UInt8>, _ offset: Int, _ length: Int) -> Int32 {
        if length == 1 && text[offset] < 0x80 { return Int32(text[offset]) }
        if length == 3 && text[offset] == 0xE2 && text[offset + 1] == 0x96 && text[offset + 2] == 0x81 { return 128 }
        return -1
    }

    /// Reusable buffers for one encode call.
    struct Scratch {
        var symbols: [Symbol] = []
        var heap: [Bigram] = []
    }

    /// A run of bytes that is one token so far; symbols form a doubly linked list in text order.
    struct Symbol {
        var start: Int
        var length: Int
        var prev: Int
        var next: Int
        /// The token whose piece these bytes are, or -1 for a single character with no piece.
        var id: Int32
        /// The short-character number (see `pairs`) of a single-character symbol, else -1.
        var character: Int32
    }

    /// A candidate merge of two adjacent symbols.
    struct Bigram {
        var score: Float
        var left: Int
        var right: Int
        /// Bytes of the merged piece: a popped entry whose symbols changed since it was pushed no longer matches.
        var size: Int
        var id: Int32

        /// Heap order: higher score first, then the leftmost pair (llama.cpp llm_bigram_spm::comparator).
        @inline(__always)
        func precedes(_ other: Bigram) -> Bool {
            score > other.score || (score == other.score && left < other.left)
        }
    }

    /// Appends the tokens of `text` (spaces already written as U+2581) to `output`.
    func encode(_ text: UnsafeBufferPointer<UInt8>, into output: inout [TokenID], scratch: inout Scratch) {
        guard !text.isEmpty else { return }
        index.withView { view in
            scores.withUnsafeBufferPointer { scores in
                mergeable.withUnsafeBufferPointer { mergeable in
                    pairs.withUnsafeBufferPointer { pairs in
                        encode(text, view: view, scores: scores, mergeable: mergeable, pairs: pairs,
                               into: &output, scratch: &scratch)
                    }
                }
            }
        }
    }

    private func encode(
        _ text: UnsafeBufferPointer<UInt8>, view: PieceIndex.View, scores: UnsafeBufferPointer<Float>,
        mergeable: UnsafeBufferPointer<Bool>, pairs: UnsafeBufferPointer<Int32>,
        into output: inout [TokenID], scratch: inout Scratch
    ) {
        @inline(__always)
        func pieceID(_ start: Int, _ count: Int) -> Int32 {
            let id = view.lookup(UnsafeBufferPointer(rebasing: text[start..<(start + count)]))
            return id >= 0 && mergeable[Int(id)] ? id : -1
        }

        // Split into UTF-8 characters by the lead byte, as llama.cpp's unicode_len_utf8 does (a stray continuation
        // byte is a character of its own; a truncated sequence is cut at the end of the text).
        scratch.symbols.removeAll(keepingCapacity: true)
        var offset = 0
        while offset < text.count {
            let length = min(Self.utf8Length(text[offset]), text.count - offset)
            let n = scratch.symbols.count
            let next = offset + length == text.count ? -1 : n + 1
            let character = Self.shortCharacter(text, offset, length)
            let id = character >= 0 ? pairs[129 * 129 + Int(character)] : pieceID(offset, length)
            scratch.symbols.append(Symbol(
                start: offset, length: length, prev: n - 1, next: next, id: id, character: character))
            offset += length
        }

        scratch.heap.removeAll(keepingCapacity: true)
        scratch.symbols.withUnsafeMutableBufferPointer { symbols in
            @inline(__always)
            func tryAddBigram(_ left: Int, _ right: Int) {
                guard left >= 0, right >= 0 else { return }
                let size = symbols[left].length + symbols[right].length
                let a = symbols[left].character, b = symbols[right].character
                let id = a >= 0 && b >= 0 ? pairs[Int(a) * 129 + Int(b)] : pieceID(symbols[left].start, size)
                guard id >= 0 else { return }
                Self.push(Bigram(score: scores[Int(id)], left: left, right: right, size: size, id: id),
                          onto: &scratch.heap)
            }

            for i in 1..<symbols.count { tryAddBigram(i - 1, i) }

            while let bigram = Self.pop(&scratch.heap) {
                let left = bigram.left, right = bigram.right
                // Skip entries made stale by an earlier merge of either symbol.
                guard symbols[left].length > 0, symbols[right].length > 0,
                      symbols[left].length + symbols[right].length == bigram.size else { continue }
                symbols[left].length += symbols[right].length
                symbols[left].id = bigram.id
                symbols[left].character = -1
                symbols[right].length = 0
                symbols[left].next = symbols[right].next
                if symbols[right].next >= 0 { symbols[symbols[right].next].prev = left }
                tryAddBigram(symbols[left].prev, left)
                tryAddBigram(left, symbols[left].next)
            }

            // Every merged symbol is a piece; a lone character with no piece is spelled as bytes.
            var i = 0
            while i >= 0 {
                let symbol = symbols[i]
                if symbol.id >= 0 {
                    output.append(symbol.id)
                } else {
                    for k in symbol.start..<(symbol.start + symbol.length) {
                        output.append(byteTokens[Int(text[k])])
                    }
                }
                i = symbol.next
            }
        }
    }

    /// Bytes in the UTF-8 sequence led by `byte`, from its high nibble (llama.cpp unicode_len_utf8).
    @inline(__always)
    static func utf8Length(_ byte: UInt8) -> Int {
        switch byte >> 4 {
        case 0xC, 0xD: 2
        case 0xE: 3
        case 0xF: 4
        default: 1
        }
    }

    @inline(__always)
    static func push(_ item: Bigram, onto heap: inout [Bigram]) {
        heap.append(item)
        var child = heap.count - 1
        while child > 0 {
            let parent = (child - 1) / 2
            guard item.precedes(heap[parent]) else { break }
            heap[child] = heap[parent]
            child = parent
        }
        heap[child] = item
    }

    @inline(__always)
    static func pop(_ heap: inout [Bigram]) -> Bigram? {
        guard let last = heap.popLast() else { return nil }
        guard !heap.isEmpty else { return last }
        let top = heap[0]
        let count = heap.count
        var parent = 0
        while true {
            var child = 2 * parent + 1
            if child >= count { break }
            if child + 1 < count && heap[child + 1].precedes(heap[child]) { child += 1 }
            guard heap[child].precedes(last) else { break }
            heap[parent] = heap[child]
            parent = child
        }
        heap[parent] = last
        return top
    }
}
