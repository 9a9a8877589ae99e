// Hugging Face folders in the other published forms (scripts/reference/make_vision_weight_fixtures.py, run by
// scripts/test.sh, with the safetensors format): f32 in two shards under model.safetensors.index.json with
// transformers 4.5x's names (model.vision_tower.vision_model.*, model.multi_modal_projector.*), bf16 with
// model.vision_tower.* names, f16 with the hub's names. Each against the NumPy reference on its own stored weights
// (tight) and against transformers' f32 outputs (as far as the dtype allows).
import Foundation
import GemmaFormats
import GemmaKernels
import GemmaTestSupport
import GemmaVision
import Testing

@Suite(.serialized) struct EncoderCheckpointTests {
    /// (folder, tower prefix, projector prefix, tolerance against transformers relative to max |ref|).
    static let folders: [(String, String, String, Float)] = [
        ("hf-sharded", "model.vision_tower.vision_model.", "model.multi_modal_projector.", 3e-6),
        ("hf-bf16", "model.vision_tower.", "model.multi_modal_projector.", 1.5e-2),
        ("hf-f16", "vision_tower.vision_model.", "multi_modal_projector.", 1.5e-3),
    ]

    @Test(arguments: folders)
    func folderMatchesItsReference(_ variant: (name: String, tower: String, projector: String, tolerance: Float)) throws {
        let dir = MMProjFixtureTests.folder + "/" + variant.name
        guard TestPaths.require(dir + "/config.json", makeWith: MMProjFixtureTests.script) != nil else { return }
        let encoder = try VisionEncoder.load(path: dir, threads: 2, precision: .exact)
        #expect(encoder.naming == .huggingFace(tower: variant.tower, projector: variant.projector))
        let (out, stages) = try VisionFixture.stages(encoder, pixels: VisionFixture.floats("pixel_values.pas"), images: 4)
        let last = (0..<4).flatMap { stages["\($0).lastHiddenState"] ?? [] }
        for (name, got, same, hf) in [
            ("last_hidden_state", last, try MMProjFixtureTests.reference("\(variant.name).last_hidden_state.pas"),
             try VisionFixture.floats("vision.last_hidden_state.pas")),
            ("soft_tokens", out, try MMProjFixtureTests.reference("\(variant.name).soft_tokens.pas"), try VisionFixture.floats("projector.soft_tokens.pas")),
        ] {
            let (d, scale) = VisionFixture.difference(ArraySlice(got), ArraySlice(same))
            let (dh, scaleH) = VisionFixture.difference(ArraySlice(got), ArraySlice(hf))
            print("\(variant.name) \(name): vs NumPy on the same weights max |Δ| \(d) (relative \(d / scale)); "
                + "vs transformers f32 \(dh) (relative \(dh / scaleH))")
            #expect(d <= VisionFixture.f32Tolerance * scale, "\(variant.name) \(name) against the reference of its own weights")
            #expect(dh <= variant.tolerance * scaleH, "\(variant.name) \(name) against transformers")
        }
    }

    @Test func shardsGiveTheSingleFilesResult() throws {
        let dir = MMProjFixtureTests.folder + "/hf-sharded"
        guard TestPaths.require(dir + "/model.safetensors.index.json", makeWith: MMProjFixtureTests.script) != nil else { return }
        let pixels = try VisionFixture.floats("pixel_values.single")
        let sharded = try VisionEncoder.load(path: dir, threads: 2).encode(pixelValues: pixels, images: 1)
        let single = try VisionEncoder.load(path: VisionFixture.folder, threads: 2).encode(pixelValues: pixels, images: 1)
        #expect(sharded == single)
    }
}
