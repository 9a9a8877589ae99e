// Reading and writing SentencePiece's tokenizer.model: a ModelProto (google/sentencepiece
// src/sentencepiece_model.proto) of pieces {piece = 1, score = 2, type = 3}, trainer_spec = 2 and normalizer_spec = 3.
// Hugging Face Gemma folders ship one, and llama.cpp's converter builds a GGUF's vocabulary from it: the pieces,
// scores and types read here, with tokenizer_config.json's added tokens applied on top (Vocabulary+Directory.swift).
//
// One convention differs between the two: SentencePiece matches user-defined pieces in normalized text, where a
// space is already U+2581, so it spells them with "▁"; llama.cpp matches them in the raw text and its converter
// writes them with spaces ("pre-normalize user-defined spaces", convert_hf_to_gguf.py). Our encoder matches raw
// text like llama.cpp, so the reader turns "▁" into " " in user-defined pieces and the writer turns it back.

extension Vocabulary {
    /// Reads a SentencePiece BPE vocabulary from the bytes of a `tokenizer.model` file.
    ///
    /// Special ids come from `trainer_spec` (`unk_id`, `bos_id`, `eos_id`, `pad_id`) when the file sets them, else
    /// from the pieces `trainer_spec` names, else from the first UNKNOWN piece and the names `<bos>`/`<s>`,
    /// `<eos>`/`</s>`, `<pad>`. `addSpacePrefix` is `normalizer_spec.add_dummy_prefix`. The file has no BOS/EOS
    /// policy, so `addBOS` is true and `addEOS` false, llama.cpp's defaults (a folder's tokenizer_config.json
    /// overrides them).
    ///
    /// - Parameter bytes: The whole file.
    /// - Throws: `TokenizerError.malformed` for bytes that are not a ModelProto, `.unsupported` for a model this
    ///   encoder would not reproduce (Unigram, a normalization table, whitespace collapsing, suffix spaces), or a
    ///   vocabulary error.
    public init(sentencePieceModel bytes: [UInt8]) throws(TokenizerError) {
        let file = "tokenizer.model"
        func malformed(_ error: ProtobufError) -> TokenizerError {
            .malformed(file: file, reason: "\(error.reason) (byte \(error.offset))")
        }
        var pieces: [String] = []
        var scores: [Float] = []
        var types: [TokenType] = []
        var trainer = TrainerSpec()
        var normalizer = NormalizerSpec()
        do throws(ProtobufError) {
            var model = ProtobufReader(bytes)
            while let (field, value) = try model.next() {
                switch (field, value) {
                case let (1, .bytes(range)):
                    let piece = try Self.readPiece(model.message(range), id: pieces.count)
                    pieces.append(piece.piece)
                    scores.append(piece.score)
                    types.append(piece.type)
                case let (2, .bytes(range)): trainer = try TrainerSpec(model.message(range))
                case let (3, .bytes(range)): normalizer = try NormalizerSpec(model.message(range))
                case (1...3, _):
                    throw ProtobufError(reason: "field \(field) of ModelProto is not a message", offset: model.offset)
                default: break  // self_test_data, denormalizer_spec, extensions
                }
            }
        } catch { throw malformed(error) }

        guard trainer.modelType == 2 else {
            throw .unsupported(file: file, reason: "model type \(trainer.modelType) (\(trainer.modelTypeName)); only BPE (2) is")
        }
        guard !trainer.treatWhitespaceAsSuffix else {
            throw .unsupported(file: file, reason: "treat_whitespace_as_suffix (spaces end pieces instead of starting them)")
        }
        guard normalizer.precompiledCharsmapBytes == 0 && !normalizer.hasRules else {
            throw .unsupported(file: file, reason: "normalizer \"\(normalizer.name)\" has a normalization table; only identity is")
        }
        guard !normalizer.removeExtraWhitespaces else {
            throw .unsupported(file: file, reason: "normalizer_spec.remove_extra_whitespaces (runs of spaces collapsed)")
        }
        guard normalizer.escapeWhitespaces else {
            throw .unsupported(file: file, reason: "normalizer_spec.escape_whitespaces = false (spaces kept as spaces)")
        }

        for id in pieces.indices where types[id] == .userDefined && pieces[id].contains("▁") {
            pieces[id] = pieces[id].replacing("▁", with: " ")
        }

        func firstID(named names: [String?]) -> TokenID? {
            for case let name? in names {
                if let id = pieces.firstIndex(of: name) { return TokenID(id) }
            }
            return nil
        }
        func special(_ explicit: Int32??, _ names: [String?]) -> TokenID? {
            if let explicit { return explicit.map { TokenID($0) } }
            return firstID(named: names)
        }
        var unknownNames: [String?] = [trainer.unknownPiece]
        if let first = types.firstIndex(of: .unknown) { unknownNames.append(pieces[first]) }
        unknownNames.append("<unk>")
        try self.init(
            pieces: pieces, scores: scores, types: types,
            bosID: special(trainer.bosID, [trainer.bosPiece, "<bos>", "<s>"]),
            eosID: special(trainer.eosID, [trainer.eosPiece, "<eos>", "</s>"]),
            unknownID: special(trainer.unknownID, unknownNames),
            paddingID: special(trainer.paddingID, [trainer.paddingPiece, "<pad>"]),
            addBOS: true, addEOS: false, addSpacePrefix: normalizer.addDummyPrefix)
    }

    /// The bytes of a `tokenizer.model` holding this vocabulary, which SentencePiece loads and encodes with as our
    /// encoder does: a BPE model with byte fallback (when there are byte pieces), the identity normalizer,
    /// `add_dummy_prefix` from `addSpacePrefix`, no whitespace collapsing, and the special ids with their pieces.
    ///
    /// SentencePiece refuses a model without an UNKNOWN piece, so the piece at `unknownID` is written as UNKNOWN
    /// (GGUF files mark it CONTROL; both are matched and rendered alike). User-defined pieces are written with
    /// "▁" for spaces (see the top of this file). Read back, the vocabulary is this one except for that piece's type
    /// (and a user-defined piece spelled with a literal "▁", which would come back with a space).
    public func sentencePieceModel() -> [UInt8] {
        var model = ProtobufWriter()
        for id in 0..<count {
            let type: TokenType = TokenID(id) == unknownID ? .unknown : types[id]
            let piece = type == .userDefined ? pieces[id].replacing(" ", with: "▁") : pieces[id]
            model.message(1) { p in
                p.string(1, piece)
                p.float(2, scores[id])
                p.int32(3, type.rawValue)
            }
        }
        model.message(2) { t in
            t.int32(3, 2)  // model_type: BPE
            t.int32(4, Int32(clamping: count))  // vocab_size
            t.bool(35, types.contains(.byte))  // byte_fallback
            t.int32(40, unknownID ?? -1)
            t.int32(41, bosID ?? -1)
            t.int32(42, eosID ?? -1)
            t.int32(43, paddingID ?? -1)
            for (field, id) in [(45, unknownID), (46, bosID), (47, eosID), (48, paddingID)] {
                if let id { t.string(field, pieces[Int(id)]) }
            }
        }
        model.message(3) { n in
            n.string(1, "identity")
            n.bool(3, addSpacePrefix)  // add_dummy_prefix
            n.bool(4, false)  // remove_extra_whitespaces
            n.bool(5, true)  // escape_whitespaces
        }
        return model.bytes
    }

    /// One `SentencePiece` message: text, score (default 0) and type (default NORMAL).
    private static func readPiece(
        _ message: ProtobufReader, id: Int
    ) throws(ProtobufError) -> (piece: String, score: Float, type: TokenType) {
        var message = message
        var piece = "", score: Float = 0, type = TokenType.normal
        while let (field, value) = try message.next() {
            switch (field, value) {
            case let (1, .bytes(range)):
                guard let text = message.string(range) else {
                    throw ProtobufError(reason: "piece \(id) is not valid UTF-8", offset: range.lowerBound)
                }
                piece = text
            case let (2, .fixed32(bits)): score = Float(bitPattern: bits)
            case let (3, .varint(raw)):
                guard let value = Int32(exactly: Int64(bitPattern: raw)), let t = TokenType(rawValue: value) else {
                    throw ProtobufError(reason: "piece \(id) has type \(Int64(bitPattern: raw)); SentencePiece types are 1...6",
                                        offset: message.offset)
                }
                type = t
            case (1...3, _):
                throw ProtobufError(reason: "field \(field) of piece \(id) has the wrong wire type", offset: message.offset)
            default: break
            }
        }
        return (piece, score, type)
    }
}

/// The fields of `TrainerSpec` that decide how text is encoded, with the .proto's defaults.
private struct TrainerSpec {
    var modelType: Int32 = 1  // UNIGRAM
    var treatWhitespaceAsSuffix = false
    /// Set only when the file sets them: `nil` = absent, `.some(nil)` = -1 (no such token).
    var unknownID: Int32??, bosID: Int32??, eosID: Int32??, paddingID: Int32??
    var unknownPiece: String?, bosPiece: String?, eosPiece: String?, paddingPiece: String?

    var modelTypeName: String {
        switch modelType {
        case 1: "Unigram"
        case 2: "BPE"
        case 3: "word"
        case 4: "character"
        default: "unknown"
        }
    }

    init() {}

    init(_ message: ProtobufReader) throws(ProtobufError) {
        var message = message
        while let (field, value) = try message.next() {
            func int32() throws(ProtobufError) -> Int32 {
                guard case let .varint(raw) = value else {
                    throw ProtobufError(reason: "trainer_spec field \(field) is not a varint", offset: message.offset)
                }
                return Int32(truncatingIfNeeded: raw)  // protobuf's int32 decoding
            }
            func string() throws(ProtobufError) -> String {
                guard case let .bytes(range) = value, let text = message.string(range) else {
                    throw ProtobufError(reason: "trainer_spec field \(field) is not UTF-8 text", offset: message.offset)
                }
                return text
            }
            func id() throws(ProtobufError) -> Int32?? {
                let v = try int32()
                return .some(v < 0 ? nil : v)
            }
            switch field {
            case 3: modelType = try int32()
            case 24: treatWhitespaceAsSuffix = try int32() != 0
            case 40: unknownID = try id()
            case 41: bosID = try id()
            case 42: eosID = try id()
            case 43: paddingID = try id()
            case 45: unknownPiece = try string()
            case 46: bosPiece = try string()
            case 47: eosPiece = try string()
            case 48: paddingPiece = try string()
            default: break
            }
        }
    }
}

/// The fields of `NormalizerSpec`, with the .proto's defaults (which normalize: a file must turn them off).
private struct NormalizerSpec {
    var name = ""
    var precompiledCharsmapBytes = 0
    var hasRules = false
    var addDummyPrefix = true
    var removeExtraWhitespaces = true
    var escapeWhitespaces = true

    init() {}

    init(_ message: ProtobufReader) throws(ProtobufError) {
        var message = message
        while let (field, value) = try message.next() {
            switch (field, value) {
            case let (1, .bytes(range)): name = message.string(range) ?? "?"
            case let (2, .bytes(range)): precompiledCharsmapBytes = range.count
            case let (3, .varint(v)): addDummyPrefix = v != 0
            case let (4, .varint(v)): removeExtraWhitespaces = v != 0
            case let (5, .varint(v)): escapeWhitespaces = v != 0
            case let (6, .bytes(range)): hasRules = !range.isEmpty
            case (1...6, _):
                throw ProtobufError(reason: "normalizer_spec field \(field) has the wrong wire type", offset: message.offset)
            default: break
            }
        }
    }
}
