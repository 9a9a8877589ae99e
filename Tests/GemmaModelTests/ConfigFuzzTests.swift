// Hostile config.json documents: 10,000 mutations of the tiny fixture's config (fields set to values of every wrong
// kind and size, removed, renamed; the text itself cut or flipped), each read and, when it reads, bound to the
// fixture's weights and run for a few tokens. Every case must end in a ModelError or a clean run: no crash, no
// allocation out of proportion (peak RSS growth under 1 GiB), none over 1 s.
import Foundation
import GemmaFormats
import GemmaModel
import GemmaTestSupport
import Testing

#if canImport(Glibc)
import Glibc
#endif

@Suite(.serialized) struct ConfigFuzzTests {
    static let cases = 10_000
    static let keys = ["vocab_size", "hidden_size", "intermediate_size", "num_hidden_layers", "num_attention_heads",
                       "num_key_value_heads", "head_dim", "rms_norm_eps", "max_position_embeddings", "sliding_window",
                       "sliding_window_pattern", "layer_types", "rope_theta", "rope_local_base_freq", "rope_scaling",
                       "rope_parameters", "query_pre_attn_scalar", "final_logit_softcapping", "attn_logit_softcapping",
                       "hidden_activation", "eos_token_id", "bos_token_id", "model_type", "text_config",
                       "use_bidirectional_attention"]
    static let values: [JSONValue] = [
        .null, .bool(true), .bool(false), .number(0), .number(-1), .number(1), .number(2), .number(3), .number(6),
        .number(0.5), .number(1e-30), .number(1e30), .number(4_294_967_296), .number(9.2e18), .number(-9.2e18),
        .number(1e308), .string(""), .string("linear"), .string("gemma3"), .string("full_attention"), .array([]),
        .array([.number(1), .number(106)]), .array([.string("sliding_attention")]), .object([]),
        .object([("rope_type", .string("yarn")), ("factor", .number(8))]),
        .object([("rope_type", .string("linear")), ("factor", .number(0))]),
        .object([("full_attention", .object([("rope_type", .string("linear")), ("factor", .number(-8))]))]),
        .object([("sliding_attention", .object([("rope_type", .string("linear")), ("factor", .number(2))]))]),
    ]

    static func peakRSSBytes() -> Int {
        var u = rusage()
        getrusage(RUSAGE_SELF.rawValue, &u)
        return Int(u.ru_maxrss) * 1024
    }

    static func mutate(_ config: JSONValue, _ rng: inout SplitMix64) -> JSONValue {
        guard case var .object(pairs) = config else { return config }
        for _ in 0..<Int.random(in: 1...3, using: &rng) {
            let key = keys.randomElement(using: &rng)!
            pairs.removeAll { $0.0 == key }
            switch Int.random(in: 0..<10, using: &rng) {
            case 0: break  // removed
            case 1:  // a list of layer kinds of a random length and content
                let n = Int.random(in: 0...12, using: &rng)
                pairs.append((key, .array((0..<n).map { _ in [JSONValue.string("full_attention"), "sliding_attention", "chunked", 1].randomElement(using: &rng)! })))
            default: pairs.append((key, values.randomElement(using: &rng)!))
            }
        }
        return .object(pairs)
    }

    @Test func hostileConfigsEndInAnErrorOrACleanRun() throws {
        let folder = HuggingFaceFixtureTests.folder
        let weights = try SafetensorsFile(path: folder + "/model.safetensors")
        let valid = try JSONValue.parse(Array(try Data(contentsOf: URL(fileURLWithPath: folder + "/config.json"))))
        var rng = SplitMix64(seed: 0xC0F1)
        var outcomes: [String: Int] = [:]
        var slowest = Duration.zero
        let rssBefore = Self.peakRSSBytes()
        let clock = ContinuousClock()
        for n in 0..<Self.cases {
            var text = Array(Self.mutate(valid, &rng).serialized.utf8)
            if n % 10 == 0, !text.isEmpty {  // byte damage: a cut or flipped bits
                if Bool.random(using: &rng) { text = Array(text.prefix(Int.random(in: 0..<text.count, using: &rng))) }
                else { for _ in 0..<3 { text[Int.random(in: 0..<text.count, using: &rng)] ^= 1 << UInt8.random(in: 0...7, using: &rng) } }
            }
            let start = clock.now
            let outcome: String
            do {
                let config = try Gemma3Config(huggingFace: try JSONValue.parse(text))
                let checkpoint = Checkpoint(path: folder, source: weights, config: config, naming: .huggingFace(prefix: "model."), normOffset: 1)
                let model = try Gemma3Model(checkpoint: checkpoint, options: ModelOptions(threads: 1, precision: .exact, placement: .mapped, kvStorage: .f32))
                let state = model.makeState(capacity: 8, maxBatch: 4)
                try model.forward([2, 10, 20, 30, 40], state: state) { _, _ in }
                outcome = "ran"
            } catch let e as ModelError {
                outcome = switch e {
                case .config: "config error"
                case .missingWeight: "missing weight"
                case .weightShape: "weight shape"
                default: "other model error"
                }
            } catch is JSONParseError {
                outcome = "not JSON"
            }
            outcomes[outcome, default: 0] += 1
            let took = clock.now - start
            slowest = max(slowest, took)
            #expect(took < .seconds(1), "case \(n) took \(took)")
        }
        let growth = Self.peakRSSBytes() - rssBefore
        print("config fuzz: \(Self.cases) cases: \(outcomes.sorted { $0.key < $1.key }), slowest \(slowest), peak RSS growth \(growth / 1024) KiB")
        #expect(outcomes.values.reduce(0, +) == Self.cases)
        #expect((outcomes["config error"] ?? 0) > Self.cases / 10, "mutations should often be refused by the config reader")
        #expect((outcomes["ran"] ?? 0) > 0)
        #expect(growth < 1 << 30)
    }
}
