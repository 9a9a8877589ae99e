// Bad configurations, checkpoints and inputs end in a thrown VisionEncoderError that names the key or tensor, never
// in a crash: text-only configs, unsupported activations, pooling that does not fit the grid, missing and misshapen
// tensors (the fixture's own tensors with one dropped or one dimension changed), wrong pixel counts.
import Foundation
import GemmaFormats
import GemmaTestSupport
import GemmaVision
import Testing

/// The fixture's tensors with one left out or given another shape.
final class AlteredSource: TensorSource, @unchecked Sendable {
    let base: any TensorSource
    let drop: String?
    let reshape: (name: String, shape: [Int])?

    init(_ base: any TensorSource, drop: String? = nil, reshape: (String, [Int])? = nil) {
        self.base = base
        self.drop = drop
        self.reshape = reshape.map { (name: $0.0, shape: $0.1) }
    }

    var tensorNames: [String] { base.tensorNames.filter { $0 != drop } }
    var dataRegions: [TensorDataRegion] { base.dataRegions }

    func sourceTensor(named name: String) -> SourceTensor? {
        guard name != drop, let t = base.sourceTensor(named: name) else { return nil }
        guard let r = reshape, r.name == name else { return t }
        return SourceTensor(name: t.name, encoding: t.encoding, storedType: t.storedType, shape: r.shape, bytes: t.bytes)
    }
}

struct EncoderErrorTests {
    static func config(_ text: String) throws(VisionEncoderError) -> Gemma3VisionConfig {
        let json: JSONValue
        do { json = try JSONValue.parse(Array(text.utf8)) } catch { throw .config("test JSON: \(error)") }
        return try Gemma3VisionConfig(huggingFace: json)
    }

    static func expectConfigError(_ text: String, mentioning key: String) {
        do {
            _ = try config(text)
            Issue.record("accepted: \(text)")
        } catch {
            guard case let .config(message) = error else { Issue.record("\(error) for \(text)"); return }
            #expect(message.contains(key), "\(message) does not name \(key)")
        }
    }

    @Test func textOnlyConfigsHaveNoVisionTower() {
        #expect(throws: VisionEncoderError.self) { try Self.config(#"{"model_type": "gemma3_text", "hidden_size": 640}"#) }
        do {
            _ = try Self.config(#"{"model_type": "gemma3_text"}"#)
        } catch {
            guard case let .noVisionTower(message) = error else { Issue.record("\(error)"); return }
            #expect(message.contains("text-only"))
        }
    }

    @Test func defaultsAreTransformers() throws {
        // An empty vision_config is SiglipVisionConfig() (224 px, patch 16: 14 x 14 patches, which 256 tokens cannot
        // pool, so 49 are asked for); the token ids and the text width are Gemma3Config's and Gemma3TextConfig's.
        let c = try Self.config(#"{"model_type": "gemma3", "mm_tokens_per_image": 49, "vision_config": {}}"#)
        #expect(c.siglip == SiglipConfig(hiddenSize: 768, intermediateSize: 3072, numHiddenLayers: 12, numAttentionHeads: 12,
                                         imageSize: 224, patchSize: 16, layerNormEps: 1e-6))
        #expect(c.mmTokensPerImage == 49 && c.poolKernel == 2 && c.textHiddenSize == 2304)
        #expect(c.boiTokenIndex == 255_999 && c.eoiTokenIndex == 256_000 && c.imageTokenIndex == 262_144)
        Self.expectConfigError(#"{"model_type": "gemma3"}"#, mentioning: "mm_tokens_per_image 256")
        // The released 4B's vision_config (no layer_norm_eps: the default 1e-6).
        let real = try Self.config(#"""
            {"model_type": "gemma3", "mm_tokens_per_image": 256, "text_config": {"hidden_size": 2560},
             "vision_config": {"hidden_size": 1152, "image_size": 896, "intermediate_size": 4304, "model_type": "siglip_vision_model",
                               "num_attention_heads": 16, "num_hidden_layers": 27, "patch_size": 14, "vision_use_head": false}}
            """#)
        #expect(real.siglip == .so400m896 && real.poolKernel == 4 && real.tokensPerSide == 16 && real.siglip.numPatches == 4096)
        #expect(real.mmTokensPerImage == 256 && real.textHiddenSize == 2560)
    }

    @Test func unsupportedConfigsAreRefusedByKey() {
        let vision = #""hidden_size": 32, "intermediate_size": 64, "num_attention_heads": 2, "num_hidden_layers": 1, "image_size": 224, "patch_size": 14"#
        Self.expectConfigError(#"{"model_type": "gemma3", "vision_config": {\#(vision), "hidden_act": "relu"}}"#, mentioning: "hidden_act")
        Self.expectConfigError(#"{"model_type": "gemma3", "mm_tokens_per_image": 15, "vision_config": {\#(vision)}}"#, mentioning: "mm_tokens_per_image")
        Self.expectConfigError(#"{"model_type": "gemma3", "mm_tokens_per_image": 9, "vision_config": {\#(vision)}}"#, mentioning: "pool")
        Self.expectConfigError(#"{"model_type": "gemma3", "vision_config": {\#(vision), "num_attention_heads": 3}}"#, mentioning: "num_attention_heads")
        Self.expectConfigError(#"{"model_type": "gemma3", "vision_config": {\#(vision), "patch_size": 0}}"#, mentioning: "patch_size")
        Self.expectConfigError(#"{"model_type": "gemma3", "vision_config": {\#(vision), "image_size": "big"}}"#, mentioning: "image_size")
        Self.expectConfigError(#"{"model_type": "gemma3", "vision_config": {\#(vision), "image_size": 100000}}"#, mentioning: "image_size")
        Self.expectConfigError(#"{"model_type": "gemma3", "vision_config": [1]}"#, mentioning: "vision_config")
        Self.expectConfigError(#"{"model_type": "paligemma"}"#, mentioning: "model_type")
    }

    static let fixtureConfig: Gemma3VisionConfig? = try? Gemma3VisionConfig(
        huggingFace: JSONValue.parse(Array(Data(contentsOf: URL(fileURLWithPath: VisionFixture.folder + "/config.json")))))

    static func bind(_ source: any TensorSource) throws(VisionEncoderError) -> VisionEncoder {
        guard let config = fixtureConfig else { throw .config("the fixture's config.json did not load") }
        return try VisionEncoder(huggingFace: source, config: config, threads: 1)
    }

    @Test func missingAndMisshapenTensorsAreNamed() throws {
        let base = try SafetensorsCheckpoint(directory: VisionFixture.folder)
        #expect(throws: VisionEncoderError.missingWeight("vision_tower.encoder.layers.1.mlp.fc2.bias")) {
            try Self.bind(AlteredSource(base, drop: "vision_tower.encoder.layers.1.mlp.fc2.bias"))
        }
        #expect(throws: VisionEncoderError.weightShape(name: "vision_tower.encoder.layers.0.self_attn.k_proj.weight", expected: [32, 32], found: [16, 64])) {
            try Self.bind(AlteredSource(base, reshape: ("vision_tower.encoder.layers.0.self_attn.k_proj.weight", [16, 64])))
        }
        #expect(throws: VisionEncoderError.weightShape(name: "multi_modal_projector.mm_input_projection_weight", expected: [32, 80], found: [80, 32])) {
            try Self.bind(AlteredSource(base, reshape: ("multi_modal_projector.mm_input_projection_weight", [80, 32])))
        }
        #expect(throws: VisionEncoderError.weightShape(name: "vision_tower.embeddings.position_embedding.weight", expected: [256, 32], found: [128, 64])) {
            try Self.bind(AlteredSource(base, reshape: ("vision_tower.embeddings.position_embedding.weight", [128, 64])))
        }
        do {
            _ = try Self.bind(AlteredSource(base, drop: "vision_tower.embeddings.patch_embedding.weight"))
            Issue.record("bound without a patch embedding")
        } catch {
            guard case .noVisionTower = error else { Issue.record("\(error)"); return }
        }
        do {
            _ = try Self.bind(AlteredSource(base, drop: "multi_modal_projector.mm_soft_emb_norm.weight"))
            Issue.record("bound without the projector norm")
        } catch {
            guard case let .missingWeight(name) = error else { Issue.record("\(error)"); return }
            #expect(name.contains("mm_soft_emb_norm"))
        }
    }

    @Test func configsLargerThanTheirWeightsFailBeforeAllocating() throws {
        // Sizes from a config alone never size an allocation: the tensors are checked first (else 60000 x 32 and
        // 1000 layers of vectors would be allocated before the first missing tensor is noticed).
        let base = try SafetensorsCheckpoint(directory: VisionFixture.folder)
        var wide = try #require(Self.fixtureConfig)
        wide.textHiddenSize = 60_000
        #expect(throws: VisionEncoderError.weightShape(name: "multi_modal_projector.mm_input_projection_weight", expected: [32, 60_000], found: [32, 80])) {
            try VisionEncoder(huggingFace: base, config: wide, threads: 1)
        }
        var odd = try #require(Self.fixtureConfig)
        odd.siglip.numAttentionHeads = 3
        #expect(throws: VisionEncoderError.self) { try VisionEncoder(huggingFace: base, config: odd, threads: 1) }
        var deep = try #require(Self.fixtureConfig)
        deep.siglip.numHiddenLayers = 1000
        #expect(throws: VisionEncoderError.missingWeight("vision_tower.encoder.layers.2.layer_norm1.weight")) {
            try VisionEncoder(huggingFace: base, config: deep, threads: 1)
        }
    }

    @Test func wrongPixelCountsAreRefused() throws {
        let encoder = try VisionEncoder.load(path: VisionFixture.folder, threads: 1)
        #expect(throws: VisionEncoderError.self) { try encoder.encode(pixelValues: [Float](repeating: 0, count: 3 * 224 * 224 - 1), images: 1) }
        #expect(throws: VisionEncoderError.self) { try encoder.encode(pixelValues: [Float](repeating: 0, count: 3 * 224 * 224), images: 2) }
        #expect(throws: VisionEncoderError.self) { try encoder.encode(pixelValues: [], images: 0) }
        #expect(throws: VisionEncoderError.self) { try VisionEncoder.load(path: VisionFixture.folder + "/no-such-folder") }
    }
}
