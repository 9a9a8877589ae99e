// llama.cpp mmproj GGUF files of the tiny vision fixture (scripts/reference/make_vision_weight_fixtures.py, run by
// scripts/test.sh: gguf-py's writer with the converter's names, metadata and type choices; f32, f16, bf16, q8_0, and
// an old file with fc1 / fc2 under ffn_down / ffn_up). Each is compared with the NumPy reference (siglip_ref.py, f64)
// on the same file's tensors as gguf-py dequantizes them: tight, as the weights are the same; and with transformers'
// f32 outputs, as far as the stored precision allows. Also: the metadata, and bad files refused by name.
import Foundation
import GemmaFormats
import GemmaKernels
import GemmaTestSupport
import GemmaVision
import Testing

@Suite(.serialized) struct MMProjFixtureTests {
    static let folder = TestPaths.generated + "/gemma3-tiny-vision-weights"
    static let script = "scripts/reference/make_vision_weight_fixtures.py"

    /// The file of `variant`, or a recorded failure naming the script that makes it.
    static func path(_ variant: String) -> String? { TestPaths.require(folder + "/\(variant).gguf", makeWith: script) }

    static func reference(_ name: String) throws -> [Float] {
        let file = try SafetensorsFile(path: folder + "/reference.safetensors")
        let t = try #require(file.sourceTensor(named: name), "\(name) in reference.safetensors")
        return Array(t.bytes.bindMemory(to: Float.self))
    }

    /// Against the NumPy reference of the same file's weights: |Δ| <= 3e-6 x max |ref| with f32 products (`.exact`);
    /// 1e-4 in `.fast`, whose quantized weights may meet int16 activations (CPUs with AVX-512).
    static let sameWeightsTolerance: [Precision: Float] = [.exact: 3e-6, .fast: 1e-4]
    /// Against transformers (f32 weights): what storing the weights costs. Every file keeps mm.input_projection in
    /// F16 (the converter forces it), which alone moves the soft tokens by ~2e-4 of their range.
    static let transformersTolerance: [String: (last: Float, soft: Float)] = [
        "f32": (3e-6, 5e-4), "old-swapped": (3e-6, 5e-4), "f16": (1e-3, 1e-3), "bf16": (1e-2, 1e-2), "q8_0": (3e-2, 3e-2),
    ]

    @Test func metadataGivesTheFolderConfig() throws {
        guard let path = Self.path("f32") else { return }
        let hf = try Gemma3VisionConfig(huggingFace: JSONValue.parse(Array(Data(contentsOf: URL(fileURLWithPath: VisionFixture.folder + "/config.json")))))
        let gguf = try Gemma3VisionConfig(mmproj: GGUFFile(path: path))
        #expect(gguf.siglip == hf.siglip)
        #expect(gguf.mmTokensPerImage == 16 && gguf.textHiddenSize == 80 && gguf.poolKernel == 4)
        // The file names no token ids: the released ones are assumed (the tiny text model's own are 255, 256, 262).
        #expect(gguf.boiTokenIndex == 255_999 && gguf.eoiTokenIndex == 256_000 && gguf.imageTokenIndex == 262_144)
    }

    @Test(arguments: ["f32", "f16", "bf16", "q8_0", "old-swapped"], [Precision.exact, .fast])
    func variantMatchesItsReference(_ variant: String, _ precision: Precision) throws {
        guard let path = Self.path(variant) else { return }
        let encoder = try VisionEncoder.load(path: path, threads: 2, precision: precision)
        #expect(encoder.naming == .mmproj(swappedFFN: variant == "old-swapped"))
        let (out, stages) = try VisionFixture.stages(encoder, pixels: VisionFixture.floats("pixel_values.pas"), images: 4)
        let last = (0..<4).flatMap { stages["\($0).lastHiddenState"] ?? [] }
        let tight = try #require(Self.sameWeightsTolerance[precision]), loose = try #require(Self.transformersTolerance[variant])
        for (name, got, same, hf, limit) in [
            ("last_hidden_state", last, try Self.reference("\(variant).last_hidden_state.pas"),
             try VisionFixture.floats("vision.last_hidden_state.pas"), loose.last),
            ("soft_tokens", out, try Self.reference("\(variant).soft_tokens.pas"), try VisionFixture.floats("projector.soft_tokens.pas"), loose.soft),
        ] {
            let (d, scale) = VisionFixture.difference(ArraySlice(got), ArraySlice(same))
            let (dh, scaleH) = VisionFixture.difference(ArraySlice(got), ArraySlice(hf))
            print("mmproj \(variant) \(precision) \(name): vs NumPy on the same weights max |Δ| \(d) (relative \(d / scale)); "
                + "vs transformers f32 \(dh) (relative \(dh / scaleH))")
            #expect(d <= tight * scale, "\(variant) \(name) against the reference of its own weights")
            #expect(dh <= limit * scaleH, "\(variant) \(name) against transformers")
        }
    }

    @Test func fileAndFolderGiveTheSameTower() throws {
        // Same f32 weights, so the tower's output is identical; the soft tokens differ by the F16 projection only.
        guard let path = Self.path("f32") else { return }
        let pixels = try VisionFixture.floats("pixel_values.single")
        let (_, file) = try VisionFixture.stages(VisionEncoder.load(path: path, threads: 2), pixels: pixels, images: 1)
        let (_, folder) = try VisionFixture.stages(VisionEncoder.load(path: VisionFixture.folder, threads: 2), pixels: pixels, images: 1)
        #expect(file["0.lastHiddenState"] == folder["0.lastHiddenState"])
        #expect(file["0.pooled"] == folder["0.pooled"])
    }

    /// The f32 file with `edit` applied, parsed from memory.
    static func edited(_ edit: (inout GGUFWriter) throws -> Void) throws -> GGUFFile? {
        guard let path = path("f32") else { return nil }
        var w = try GGUFWriter(copying: GGUFFile(path: path))
        try edit(&w)
        return try GGUFFile(bytes: w.serialized())
    }

    /// A copy of the f32 file's tensors except `drop`, with `metadata`.
    static func without(_ drop: String) throws -> GGUFFile? {
        guard let path = path("f32") else { return nil }
        let file = try GGUFFile(path: path)
        var w = GGUFWriter(metadata: file.metadata)
        for t in file.tensors where t.name != drop {
            try w.addTensor(name: t.name, type: t.type, dimensions: t.dimensions, data: [UInt8](file.data(for: t)))
        }
        return try GGUFFile(bytes: w.serialized())
    }

    @Test func badFilesAreRefusedByName() throws {
        guard let missing = try Self.without("v.blk.1.attn_k.weight") else { return }
        #expect(throws: VisionEncoderError.missingWeight("v.blk.1.attn_k.weight")) { try VisionEncoder(mmproj: missing) }
        let text = try #require(try Self.edited { $0.metadata["general.architecture"] = .string("gemma3") })
        do {
            _ = try VisionEncoder(mmproj: text)
            Issue.record("a text model's GGUF bound as an mmproj")
        } catch {
            guard case let .noVisionTower(message) = error else { Issue.record("\(error)"); return }
            #expect(message.contains("gemma3"))
        }
        let other = try #require(try Self.edited { $0.metadata["clip.projector_type"] = .string("idefics3") })
        #expect(throws: VisionEncoderError.self) { try VisionEncoder(mmproj: other) }
        let noHeads = try #require(try Self.edited { $0.metadata["clip.vision.attention.head_count"] = nil })
        do {
            _ = try VisionEncoder(mmproj: noHeads)
            Issue.record("bound without a head count")
        } catch {
            guard case let .config(message) = error else { Issue.record("\(error)"); return }
            #expect(message.contains("clip.vision.attention.head_count"))
        }
        let wide = try #require(try Self.edited { $0.metadata["clip.vision.embedding_length"] = .uint32(64) })
        #expect(throws: VisionEncoderError.weightShape(name: "v.patch_embd.weight", expected: [64, 3, 14, 14], found: [32, 3, 14, 14])) {
            try VisionEncoder(mmproj: wide)
        }
    }

    @Test func scaleFactorSetsThePooling() throws {
        // clip.vision.projector.scale_factor (written by the converter only when it is not 4): 16 / 2 = 8 per side.
        let file = try #require(try Self.edited { $0.metadata["clip.vision.projector.scale_factor"] = .uint32(2) })
        let c = try Gemma3VisionConfig(mmproj: file)
        #expect(c.mmTokensPerImage == 64 && c.poolKernel == 2)
        let odd = try #require(try Self.edited { $0.metadata["clip.vision.projector.scale_factor"] = .uint32(3) })
        #expect(throws: VisionEncoderError.self) { try Gemma3VisionConfig(mmproj: odd) }
    }
}
