// The training path's gradients (issue 21): against central finite differences on a small random model with every
// kind of parameter (embedding through the tied head, the four norms of a layer, QK-norms, q/k/v/o, gate/up/down, the
// final norm; local and global layers with RoPE scaling; grouped-query attention), and against PyTorch's autograd
// through transformers on Tests/Fixtures/gemma3-tiny-text (scripts/reference/make_training_refs.py).
import Foundation
import GemmaFormats
import GemmaModel
import GemmaTestSupport
import GemmaTrain
import Testing

@Suite struct GradientTests {
    /// 3 layers (local, local, global) of 16 wide, 2 query heads over 1 KV head of 8, FFN 24, vocabulary 40,
    /// window 3, global RoPE x8: small enough for finite differences over every tensor.
    static func smallConfig() throws -> Gemma3Config {
        let json = #"""
        {"model_type": "gemma3_text", "vocab_size": 40, "hidden_size": 16, "intermediate_size": 24,
         "num_hidden_layers": 3, "num_attention_heads": 2, "num_key_value_heads": 1, "head_dim": 8,
         "rms_norm_eps": 1e-6, "max_position_embeddings": 64, "sliding_window": 3, "sliding_window_pattern": 3,
         "rope_theta": 1000000.0, "rope_local_base_freq": 10000.0, "rope_scaling": {"rope_type": "linear", "factor": 8.0},
         "query_pre_attn_scalar": 8, "hidden_activation": "gelu_pytorch_tanh"}
        """#
        return try Gemma3Config(huggingFace: JSONValue.parse(Array(json.utf8)))
    }

    @Test func gradientsMatchFiniteDifferences() throws {
        let config = try Self.smallConfig()
        let model = TextModelGradient(config: config, normOffset: 1)
        // Deterministic random weights: matrices ~ N(0, 0.3^2) (large enough for nonlinear effects), norms ~ N(0, 0.2^2).
        var random = TestRandom(seed: 12345)
        func gaussian() -> Float { random.gaussian() }
        var params = [Float](repeating: 0, count: model.layout.count)
        for e in model.layout.entries {
            let sd: Float = e.shape.count == 1 ? 0.2 : 0.3
            for i in 0..<e.count { params[e.offset + i] = gaussian() * sd }
        }
        let tokens = [2, 7, 13, 7, 31, 5, 22, 39]
        let targets: [Int?] = [nil, 13, 7, 31, 5, 22, 39, 1]
        var grad = [Float](repeating: 0, count: params.count)
        let loss = try grad.withUnsafeMutableBufferPointer { g in
            try model.loss(parameters: params, tokens: tokens, targets: targets, gradient: g.baseAddress!)
        }
        #expect(loss.isFinite && loss > 0)
        // Central differences at a few entries of every tensor, in f32 with h = 1e-2 (errors O(h^2) ~ 1e-4 relative).
        var worst = 0.0, checked = 0
        for e in model.layout.entries {
            for k in 0..<3 {
                let i = e.offset + (k * 7919 + 13) % e.count
                var plus = params, minus = params
                plus[i] += 1e-2
                minus[i] -= 1e-2
                let fd = (Double(try model.loss(parameters: plus, tokens: tokens, targets: targets))
                    - Double(try model.loss(parameters: minus, tokens: tokens, targets: targets))) / 2e-2
                if abs(fd) > 1e-2 { worst = max(worst, abs(fd - Double(grad[i])) / abs(fd)) }
                #expect(abs(fd - Double(grad[i])) <= 2e-4 + 1e-2 * abs(fd), "\(e.weight) [\(i - e.offset)]: analytic \(grad[i]), finite difference \(fd)")
                checked += 1
            }
        }
        print("finite differences: \(checked) entries over \(model.layout.entries.count) tensors, worst relative error \(worst) where |gradient| > 0.01")
    }

    @Test func lossAndGradientsMatchPyTorch() throws {
        let reference = try SafetensorsFile(path: TestPaths.fixtures + "/training-reference.safetensors")
        func json(_ key: String) throws -> [JSONValue] {
            guard case let .array(a) = try JSONValue.parse(Array(reference.metadataValue(forKey: key)!.utf8)) else { return [] }
            return a
        }
        let tokens = try json("tokens").map { v -> Int in if case let .number(n) = v { return Int(n) } else { return -1 } }
        let targets = try json("targets").map { v -> Int? in if case let .number(n) = v { return Int(n) } else { return nil } }
        let expectedLoss = Double(reference.metadataValue(forKey: "loss")!)!
        let checkpoint = try Checkpoint.open(path: TestPaths.fixtures + "/gemma3-tiny-text")
        let model = TextModelGradient(config: checkpoint.config, normOffset: checkpoint.normOffset)
        let params = try checkpoint.trainableParameters(model.layout)
        var grad = [Float](repeating: 0, count: params.count)
        let loss = try grad.withUnsafeMutableBufferPointer { g in
            try model.loss(parameters: params, tokens: tokens, targets: targets, gradient: g.baseAddress!)
        }
        print("loss \(loss), PyTorch \(expectedLoss)")
        #expect(abs(Double(loss) - expectedLoss) <= 1e-4 * abs(expectedLoss))
        var worst = (0.0, "")
        for e in model.layout.entries {
            let name = TensorNaming.huggingFace(prefix: "model.").name(of: e.weight)
            let info = try #require(reference.tensor(named: name), "no reference gradient for \(name)")
            let ref = reference.data(for: info).bindMemory(to: Float.self)
            #expect(ref.count == e.count)
            var diff = 0.0, norm = 0.0
            for i in 0..<min(ref.count, e.count) {
                let d = Double(grad[e.offset + i]) - Double(ref[i])
                diff += d * d
                norm += Double(ref[i]) * Double(ref[i])
            }
            let rel = (diff / max(norm, 1e-30)).squareRoot()
            if rel > worst.0 { worst = (rel, name) }
            #expect(rel <= 1e-4, "\(name): relative error \(rel)")
        }
        print("gradients of \(model.layout.entries.count) tensors against PyTorch: worst relative error \(worst.0) (\(worst.1))")
    }
}
