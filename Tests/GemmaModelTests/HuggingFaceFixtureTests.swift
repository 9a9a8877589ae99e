// Hugging Face folders against transformers: the tiny Gemma3ForCausalLM of Tests/Fixtures/gemma3-tiny-text (1 KV
// head of dimension 32 under 4 query heads, query_pre_attn_scalar 48, window 6, linear RoPE x8 on the global layer),
// loaded from its f32 and bf16 safetensors under both config schemas and every published tensor-name layout, gives
// transformers' logits (f32 compute, eager attention) over sequences past the window, and its greedy tokens with the
// KV cache.
import Foundation
import GemmaFormats
import GemmaKernels
import GemmaModel
import GemmaTestSupport
import Testing

@Suite(.serialized) struct HuggingFaceFixtureTests {
    static let folder = TestPaths.fixtures + "/gemma3-tiny-text"

    /// transformers' outputs (fixtures.safetensors).
    static let reference: SafetensorsFile? = try? SafetensorsFile(path: folder + "/fixtures.safetensors")

    static func floats(_ name: String) throws -> [Float] {
        let t = try #require(reference?.sourceTensor(named: name), "fixture tensor \(name)")
        return Array(t.bytes.bindMemory(to: Float.self))
    }

    static func ids(_ name: String) throws -> [Int] {
        let t = try #require(reference?.sourceTensor(named: name), "fixture tensor \(name)")
        return t.bytes.bindMemory(to: Int64.self).map(Int.init)
    }

    static func load(_ path: String, precision: Precision = .exact) throws -> Gemma3Model {
        try Gemma3Model(path: path, options: ModelOptions(threads: 2, precision: precision, placement: .mapped, kvStorage: .f32))
    }

    /// Every position's logits of `ids` in one prompt pass.
    static func logits(_ model: Gemma3Model, _ ids: [Int], maxBatch: Int = 64) throws -> [Float] {
        let state = model.makeState(capacity: ids.count, maxBatch: maxBatch)
        var out = [Float](repeating: .nan, count: ids.count * model.config.vocabSize)
        try model.forward(ids, state: state, logits: .all) { i, l in
            for (j, x) in l.enumerated() { out[i * l.count + j] = x }
        }
        return out
    }

    static func maxDifference(_ a: [Float], _ b: [Float]) -> Float {
        precondition(a.count == b.count)
        return zip(a, b).reduce(0) { max($0, abs($1.0 - $1.1)) }
    }

    @Test func configsOfBothSchemasReadTheSame() throws {
        let modern = try Checkpoint.open(path: Self.folder).config
        let hub = try Gemma3Config(huggingFace: JSONValue.parse(Array(Data(contentsOf: URL(fileURLWithPath: Self.folder + "/hub-layout/config.json")))))
        // The same model: explicit layer types (transformers 5) or the pattern they follow (the hub's files).
        #expect(modern.layers == hub.layers)
        var withoutTypes = modern
        withoutTypes.layerTypes = nil
        #expect(withoutTypes == hub)
        #expect(modern.numKeyValueHeads == 1 && modern.headDim == 32 && modern.queryPreAttnScalar == 48 && modern.slidingWindow == 6)
        #expect(modern.layers.map(\.isGlobal) == [false, false, false, false, false, true, false, false])
        #expect(modern.layers[5].ropeScale == 8 && modern.layers[5].ropeBase == 1_000_000)
        #expect(modern.layers[0].ropeScale == 1 && modern.layers[0].ropeBase == 10_000)
        #expect(modern.eosTokenIds == [1, 106] && modern.bosTokenId == 2)
    }

    @Test(arguments: ["chat", "window_plus", "long"])
    func f32LogitsMatchTransformers(_ sequence: String) throws {
        let model = try Self.load(Self.folder)
        let got = try Self.logits(model, Self.ids(sequence + ".input_ids"))
        let d = Self.maxDifference(got, try Self.floats(sequence + ".logits"))
        print("\(sequence) f32: max |Δlogit| \(d)")
        #expect(d < 1e-4)
        // Steps of 5 rows (the cache's ring wraps inside steps) give the same logits.
        let stepped = try Self.logits(model, Self.ids(sequence + ".input_ids"), maxBatch: 5)
        #expect(Self.maxDifference(stepped, got) < 1e-5)
    }

    @Test(arguments: ["chat", "window_plus", "long"])
    func bf16LogitsMatchTransformers(_ sequence: String) throws {
        let model = try Self.load(Self.folder + "/bf16")
        let got = try Self.logits(model, Self.ids(sequence + ".input_ids"))
        let d = Self.maxDifference(got, try Self.floats(sequence + ".logits_bf16weights_f32compute"))
        print("\(sequence) bf16: max |Δlogit| \(d)")
        #expect(d < 1e-4)
    }

    /// The residual stream layer by layer: the embeddings (x sqrt(72)) and the output of each of the 8 decoder
    /// layers (local, and the global one with RoPE x8), every position, one prompt step.
    @Test(arguments: ["chat", "window_plus", "long"])
    func layerOutputsMatchTransformers(_ sequence: String) throws {
        let model = try Self.load(Self.folder)
        let ids = try Self.ids(sequence + ".input_ids")
        let h = model.config.hiddenSize, n = ids.count, layers = model.config.numHiddenLayers
        let embeds = try Self.floats(sequence + ".inputs_embeds"), outputs = try Self.floats(sequence + ".layer_outputs")
        let state = model.makeState(capacity: n, maxBatch: n)
        var seen: [Int] = [], worst: [Float] = Array(repeating: 0, count: layers + 1), scale = worst
        state.workspace.layerObserver = { l, x in
            seen.append(l)
            let want = l < 0 ? embeds[...] : outputs[(l * n * h)..<((l + 1) * n * h)]
            for (i, w) in want.enumerated() {
                worst[l + 1] = max(worst[l + 1], abs(x[i] - w))
                scale[l + 1] = max(scale[l + 1], abs(w))
            }
        }
        try model.forward(ids, state: state, logits: .last) { _, _ in }
        print("\(sequence) layers -1...\(layers - 1): max |Δ| " + zip(worst, scale).map { "\($0) (of \($1))" }.joined(separator: ", "))
        #expect(seen == Array(-1..<layers))
        for (d, s) in zip(worst, scale) { #expect(d <= 1e-5 * max(1, s)) }
    }

    /// Default precision on the bf16 checkpoint: steps of 1 and 5 rows take the bf16 row kernels (weights read where
    /// they lie, f32 FMA in another summation order), steps of 64 the f32 panel GEMM.
    @Test(arguments: ["chat", "window_plus", "long"])
    func bf16RowKernelsMatchTransformers(_ sequence: String) throws {
        let model = try Self.load(Self.folder + "/bf16", precision: .fast)
        let want = try Self.floats(sequence + ".logits_bf16weights_f32compute")
        for maxBatch in [1, 5, 64] {
            let d = Self.maxDifference(try Self.logits(model, Self.ids(sequence + ".input_ids"), maxBatch: maxBatch), want)
            print("\(sequence) bf16, default precision, steps of \(maxBatch): max |Δlogit| \(d)")
            #expect(d < 1e-4)
        }
    }

    @Test(arguments: ["chat", "window_plus"])
    func greedyDecodingMatchesTransformers(_ sequence: String) throws {
        let model = try Self.load(Self.folder)
        let prompt = try Self.ids(sequence + ".input_ids")
        let expected = try Self.ids(sequence + ".greedy.new_tokens")
        let stepLogits = try Self.floats(sequence + ".greedy.step_logits")
        let v = model.config.vocabSize
        let state = model.makeState(capacity: prompt.count + expected.count)
        var tokens: [Int] = [], worst: Float = 0
        var next = 0
        func take(_ l: UnsafeBufferPointer<Float>) {
            let step = tokens.count
            worst = max(worst, Self.maxDifference(Array(l), Array(stepLogits[step * v..<(step + 1) * v])))
            next = topK(l, 1)[0].id
            tokens.append(next)
        }
        try model.forward(prompt, state: state) { _, l in take(l) }
        while tokens.count < expected.count { try model.forward([next], state: state) { _, l in take(l) } }
        print("\(sequence) greedy: \(tokens), step logits max |Δ| \(worst)")
        #expect(tokens == expected)
        #expect(worst < 1e-4)
    }
}

/// The same weights under every published layout, and what a folder must not hold.
@Suite(.serialized) struct HuggingFaceLayoutTests {
    static let folder = HuggingFaceFixtureTests.folder

    /// A new folder in the temporary directory with the fixture's tensors renamed (`model.` replaced by `prefix`),
    /// split into `shards` files under an index, with `config` as its config.json.
    static func makeFolder(prefix: String, shards: Int, config: JSONValue, extra: [(String, SafetensorsTensorInfo)] = [],
                           drop: String? = nil, reshape: String? = nil) throws -> String {
        let dir = NSTemporaryDirectory() + "gemma-layout-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        let source = try SafetensorsFile(path: folder + "/model.safetensors")
        var writers = [SafetensorsWriter](repeating: SafetensorsWriter(), count: shards)
        var map: [(String, JSONValue)] = []
        let all = source.tensors.map { ($0.name, $0) } + extra
        for (i, (name, t)) in all.enumerated() where name != drop {
            let renamed = name.hasPrefix("model.") ? prefix + name.dropFirst("model.".count) : name
            let shape = name == reshape ? [t.shape.reduce(1, *)] : t.shape
            try writers[i % shards].addTensor(name: renamed, dtype: t.dtype, shape: shape, data: Array(source.data(for: t)))
            map.append((renamed, .string(shards == 1 ? "model.safetensors" : "model-\(i % shards + 1)-of-\(shards).safetensors")))
        }
        if shards == 1 {
            try writers[0].write(to: dir + "/model.safetensors")
        } else {
            for (k, w) in writers.enumerated() { try w.write(to: dir + "/model-\(k + 1)-of-\(shards).safetensors") }
            let index: JSONValue = .object([("metadata", .object([])), ("weight_map", .object(map))])
            try Data(index.serialized.utf8).write(to: URL(fileURLWithPath: dir + "/model.safetensors.index.json"))
        }
        try Data(config.serialized.utf8).write(to: URL(fileURLWithPath: dir + "/config.json"))
        return dir
    }

    static func textConfig() throws -> JSONValue {
        try JSONValue.parse(Array(Data(contentsOf: URL(fileURLWithPath: folder + "/config.json"))))
    }

    /// Gemma3ForConditionalGeneration's config.json around the text config.
    static func conditionalConfig() throws -> JSONValue {
        .object([("architectures", .array(["Gemma3ForConditionalGeneration"])), ("model_type", "gemma3"),
                 ("text_config", try textConfig())])
    }

    static func replacing(_ config: JSONValue, _ key: String, _ value: JSONValue) -> JSONValue {
        guard case var .object(pairs) = config else { return config }
        pairs.removeAll { $0.0 == key }
        pairs.append((key, value))
        return .object(pairs)
    }

    @Test(arguments: [("model.language_model.", 3), ("language_model.model.", 2), ("model.", 2)])
    func everyLayoutGivesTheSameLogits(prefix: String, shards: Int) throws {
        let config = prefix == "model." ? try Self.textConfig() : try Self.conditionalConfig()
        let dir = try Self.makeFolder(prefix: prefix, shards: shards, config: config)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let ids = try HuggingFaceFixtureTests.ids("long.input_ids")
        let reference = try HuggingFaceFixtureTests.logits(HuggingFaceFixtureTests.load(Self.folder), ids)
        let checkpoint = try Checkpoint.open(path: dir)
        #expect(checkpoint.naming == .huggingFace(prefix: prefix))
        let got = try HuggingFaceFixtureTests.logits(HuggingFaceFixtureTests.load(dir), ids)
        #expect(got == reference)
    }

    @Test func aStoredHeadEqualToTheEmbeddingIsTied() throws {
        let source = try SafetensorsFile(path: Self.folder + "/model.safetensors")
        let embedding = try #require(source.tensor(named: "model.embed_tokens.weight"))
        let dir = try Self.makeFolder(prefix: "model.", shards: 1, config: try Self.textConfig(), extra: [("lm_head.weight", embedding)])
        defer { try? FileManager.default.removeItem(atPath: dir) }
        _ = try Checkpoint.open(path: dir)
    }

    /// Each damaged folder gives a ModelError whose message names the culprit.
    @Test func unsupportedOrBrokenFoldersAreClearErrors() throws {
        let text = try Self.textConfig()
        let cases: [(config: JSONValue, drop: String?, reshape: String?, expected: String)] = [
            (Self.replacing(text, "final_logit_softcapping", .number(30)), nil, nil, "final_logit_softcapping"),
            (Self.replacing(text, "attn_logit_softcapping", .number(50)), nil, nil, "attn_logit_softcapping"),
            (Self.replacing(text, "rope_parameters", .object([("full_attention", .object([("rope_type", "yarn"), ("factor", .number(8))]))])), nil, nil, "yarn"),
            (Self.replacing(Self.replacing(text, "rope_parameters", .null), "rope_scaling", .object([("rope_type", "dynamic"), ("factor", .number(2))])), nil, nil, "dynamic"),
            (Self.replacing(text, "hidden_activation", "silu"), nil, nil, "hidden_activation"),
            (Self.replacing(text, "model_type", "llama"), nil, nil, "model_type"),
            (Self.replacing(text, "layer_types", .array(["full_attention"])), nil, nil, "layer_types"),
            (Self.replacing(text, "hidden_size", "72"), nil, nil, "hidden_size"),
            (text, "model.layers.3.mlp.up_proj.weight", nil, "model.layers.3.mlp.up_proj.weight"),
            (text, nil, "model.layers.5.self_attn.k_proj.weight", "model.layers.5.self_attn.k_proj.weight"),
            (Self.replacing(text, "num_key_value_heads", .number(2)), nil, nil, "model.layers.0.self_attn.k_proj.weight"),
        ]
        for c in cases {
            let dir = try Self.makeFolder(prefix: "model.", shards: 1, config: c.config, drop: c.drop, reshape: c.reshape)
            defer { try? FileManager.default.removeItem(atPath: dir) }
            do {
                _ = try HuggingFaceFixtureTests.load(dir)
                Issue.record("loaded a folder that should fail (\(c.expected))")
            } catch let e as ModelError {
                #expect("\(e)".contains(c.expected), "\(e)")
            }
        }
        // No config.json at all.
        let empty = NSTemporaryDirectory() + "gemma-empty-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: empty, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: empty) }
        #expect(throws: ModelError.self) { try Checkpoint.open(path: empty) }
    }
}
