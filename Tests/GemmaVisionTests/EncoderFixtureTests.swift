// The SigLIP tower and the projector against transformers: the tiny Gemma3ForConditionalGeneration of
// Tests/Fixtures/gemma3-tiny-vision (vision hidden 32, MLP 64, 2 layers of 2 heads of 16, 224 px, patch 14 -> 256
// patches, pooled 4 x 4 -> 16 soft tokens of width 80), loaded from its transformers-5 folder (vision_tower.* names)
// and its hub-layout folder (vision_tower.vision_model.*, legacy config), stage by stage: embeddings, each layer's
// output, last_hidden_state, pooled, normed and soft tokens, for one image and for the 4-image Pan & Scan batch.
import Foundation
import GemmaFormats
import GemmaKernels
import GemmaVision
import GemmaTestSupport
import Testing

/// transformers' outputs and the helpers every vision test shares.
enum VisionFixture {
    static let folder = TestPaths.fixtures + "/gemma3-tiny-vision"
    static let reference: SafetensorsFile? = try? SafetensorsFile(path: folder + "/fixtures.safetensors")

    static func floats(_ name: String) throws -> [Float] {
        let t = try #require(reference?.sourceTensor(named: name), "fixture tensor \(name) in \(folder)/fixtures.safetensors")
        return Array(t.bytes.bindMemory(to: Float.self))
    }

    /// Every stage of every image of one encode, keyed by image and stage.
    static func stages(_ encoder: VisionEncoder, pixels: [Float], images: Int) throws -> (out: [Float], stages: [String: [Float]]) {
        var stages: [String: [Float]] = [:]
        let out = try pixels.withUnsafeBufferPointer { p in
            try encoder.encode(pixelValues: p, images: images, observe: { image, stage, values in
                stages["\(image).\(stage)"] = Array(values)
            })
        }
        return (out, stages)
    }

    /// Max |a - b| and the largest |b|.
    static func difference(_ a: ArraySlice<Float>, _ b: ArraySlice<Float>) -> (max: Float, scale: Float) {
        precondition(a.count == b.count, "\(a.count) vs \(b.count) values")
        var d: Float = 0, s: Float = 0
        for (x, y) in zip(a, b) {
            d = max(d, abs(x - y))
            s = max(s, abs(y))
        }
        return (d, s)
    }

    /// Relative tolerance against transformers' f32 outputs from f32 weights: max |Δ| <= 3e-6 * max |reference|
    /// (Measured: see the printed values; our sums run in another order, expFast and tanh-via-exp differ by ~1e-7.)
    static let f32Tolerance: Float = 3e-6
}

@Suite(.serialized) struct EncoderFixtureTests {
    @Test func configsOfBothLayoutsReadTheSame() throws {
        func read(_ path: String) throws -> Gemma3VisionConfig {
            try Gemma3VisionConfig(huggingFace: JSONValue.parse(Array(Data(contentsOf: URL(fileURLWithPath: path)))))
        }
        let modern = try read(VisionFixture.folder + "/config.json")
        let hub = try read(VisionFixture.folder + "/hub-layout/config.json")
        #expect(modern == hub)
        let s = modern.siglip
        #expect(s.hiddenSize == 32 && s.intermediateSize == 64 && s.numHiddenLayers == 2 && s.numAttentionHeads == 2)
        #expect(s.imageSize == 224 && s.patchSize == 14 && s.numChannels == 3 && s.layerNormEps == 1e-6)
        #expect(s.headDim == 16 && s.patchesPerSide == 16 && s.numPatches == 256 && s.patchLength == 588)
        #expect(modern.mmTokensPerImage == 16 && modern.tokensPerSide == 4 && modern.poolKernel == 4 && modern.textHiddenSize == 80)
        #expect(modern.boiTokenIndex == 255 && modern.eoiTokenIndex == 256 && modern.imageTokenIndex == 262)
    }

    @Test(arguments: ["", "/hub-layout"])
    func singleImageStagesMatchTransformers(_ layout: String) throws {
        let encoder = try VisionEncoder.load(path: VisionFixture.folder + layout, threads: 2)
        if case let .huggingFace(tower, projector) = encoder.naming {
            #expect(tower == (layout.isEmpty ? "vision_tower." : "vision_tower.vision_model."))
            #expect(projector == "multi_modal_projector.")
        } else {
            Issue.record("a Hugging Face folder bound as \(encoder.naming)")
        }
        let (out, stages) = try VisionFixture.stages(encoder, pixels: VisionFixture.floats("pixel_values.single"), images: 1)
        let layerRef = try VisionFixture.floats("vision.layer_outputs.single")  // [2, 1, 256, 32]
        var checks: [(String, [Float], ArraySlice<Float>)] = [
            ("embeddings", try #require(stages["0.embeddings"]), ArraySlice(try VisionFixture.floats("vision.embeddings.single"))),
        ]
        for l in 0..<2 {
            checks.append(("layer \(l)", try #require(stages["0.layer(\(l))"]), layerRef[(l * 256 * 32)..<((l + 1) * 256 * 32)]))
        }
        checks += [
            ("last_hidden_state", try #require(stages["0.lastHiddenState"]), ArraySlice(try VisionFixture.floats("vision.last_hidden_state.single"))),
            ("pooled", try #require(stages["0.pooled"]), ArraySlice(try VisionFixture.floats("projector.pooled.single"))),
            ("normed", try #require(stages["0.normed"]), ArraySlice(try VisionFixture.floats("projector.normed.single"))),
            ("soft_tokens", out, ArraySlice(try VisionFixture.floats("projector.soft_tokens.single"))),
        ]
        for (name, got, want) in checks {
            let (d, scale) = VisionFixture.difference(ArraySlice(got), want)
            print("single\(layout) \(name): max |Δ| \(d) (max |ref| \(scale), relative \(d / scale))")
            #expect(d <= VisionFixture.f32Tolerance * scale, "\(name): max |Δ| \(d) against max |ref| \(scale)")
        }
        #expect(stages["0.softTokens"] == out)
    }

    @Test(arguments: ["", "/hub-layout"])
    func panAndScanBatchMatchesTransformers(_ layout: String) throws {
        let encoder = try VisionEncoder.load(path: VisionFixture.folder + layout, threads: 2)
        let (out, stages) = try VisionFixture.stages(encoder, pixels: VisionFixture.floats("pixel_values.pas"), images: 4)
        #expect(out.count == 4 * 16 * 80)
        for (stage, key, per) in [("lastHiddenState", "vision.last_hidden_state.pas", 256 * 32), ("pooled", "projector.pooled.pas", 16 * 32),
                                  ("normed", "projector.normed.pas", 16 * 32)] {
            let ref = try VisionFixture.floats(key)
            for image in 0..<4 {
                let got = try #require(stages["\(image).\(stage)"])
                let (d, scale) = VisionFixture.difference(ArraySlice(got), ref[(image * per)..<((image + 1) * per)])
                print("pas\(layout) image \(image) \(stage): max |Δ| \(d) (max |ref| \(scale))")
                #expect(d <= VisionFixture.f32Tolerance * scale, "image \(image) \(stage)")
            }
        }
        let (d, scale) = VisionFixture.difference(ArraySlice(out), ArraySlice(try VisionFixture.floats("projector.soft_tokens.pas")))
        print("pas\(layout) soft_tokens: max |Δ| \(d) (max |ref| \(scale))")
        #expect(d <= VisionFixture.f32Tolerance * scale)
        // An image's result does not depend on the batch it is in.
        let single = try encoder.encode(pixelValues: Array(VisionFixture.floats("pixel_values.pas")[(2 * 3 * 224 * 224)..<(3 * 3 * 224 * 224)]), images: 1)
        #expect(Array(out[(2 * 16 * 80)..<(3 * 16 * 80)]) == single)
    }

    @Test func resultsDoNotDependOnTheThreadCount() throws {
        let pixels = try VisionFixture.floats("pixel_values.pas")
        let one = try VisionEncoder.load(path: VisionFixture.folder, threads: 1).encode(pixelValues: pixels, images: 4)
        let two = try VisionEncoder.load(path: VisionFixture.folder, threads: 2).encode(pixelValues: pixels, images: 4)
        #expect(one == two)
    }

    @Test func progressIsReportedPerLayerAndImage() throws {
        let encoder = try VisionEncoder.load(path: VisionFixture.folder, threads: 2)
        var seen: [VisionEncodeProgress] = []
        _ = try encoder.encode(pixelValues: VisionFixture.floats("pixel_values.pas"), images: 4) { seen.append($0) }
        #expect(seen.map { "\($0.image).\($0.layer)" } == ["0.1", "0.2", "1.1", "1.2", "2.1", "2.2", "3.1", "3.2"])
        #expect(seen.last?.fraction == 1)
    }
}
