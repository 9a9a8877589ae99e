// Opening the vision side of a checkpoint: a Hugging Face Gemma3ForConditionalGeneration folder (config.json plus
// model.safetensors or shards under model.safetensors.index.json, any published name layout) or a llama.cpp mmproj
// GGUF file. Weights are read in place from the file mapping.
import Foundation
import GemmaFormats
import GemmaKernels

extension VisionEncoder {
    /// Opens `path`: a Hugging Face folder (or a file inside one: config.json, *.safetensors, the index), else an mmproj
    /// GGUF file. `threads`: workers (default every core); `precision`: as for the text model (only quantized weights
    /// on CPUs with AVX-512 compute differently in `.fast`).
    public static func load(path: String, threads: Int? = nil, precision: Precision = .fast) throws(VisionEncoderError) -> VisionEncoder {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else {
            throw .format(.io(path: path, reason: "no such file or folder"))
        }
        if isDirectory.boolValue { return try load(huggingFace: path, threads: threads, precision: precision) }
        if path.hasSuffix(".safetensors") || path.hasSuffix("config.json") || path.hasSuffix(".safetensors.index.json") {
            let dir = (path as NSString).deletingLastPathComponent
            return try load(huggingFace: dir.isEmpty ? "." : dir, threads: threads, precision: precision)
        }
        return try load(mmproj: path, threads: threads, precision: precision)
    }

    /// Opens a Hugging Face folder's vision tower and projector.
    public static func load(huggingFace directory: String, threads: Int? = nil, precision: Precision = .fast) throws(VisionEncoderError) -> VisionEncoder {
        let dir = directory.hasSuffix("/") ? String(directory.dropLast()) : directory
        let configPath = dir + "/config.json"
        guard FileManager.default.fileExists(atPath: configPath) else {
            throw .config("\(dir) has no config.json (a Hugging Face model folder needs one)")
        }
        let bytes: ByteStorage
        do { bytes = try ByteStorage(mapping: configPath) } catch { throw .format(error) }
        guard bytes.count <= 64 << 20 else { throw .config("\(configPath) is \(bytes.count) bytes, more than a config can be") }
        let json: JSONValue
        do { json = try JSONValue.parse(Array(bytes.buffer)) } catch { throw .config("\(configPath) is not valid JSON: \(error)") }
        let config = try Gemma3VisionConfig(huggingFace: json, file: configPath)
        let source: SafetensorsCheckpoint
        do { source = try SafetensorsCheckpoint(directory: dir) } catch { throw .format(error) }
        return try VisionEncoder(huggingFace: source, config: config, threads: threads, precision: precision, name: dir)
    }

    /// Binds a Hugging Face checkpoint's tensors (any `TensorSource` with transformers' names) for `config`.
    public convenience init(huggingFace source: any TensorSource, config: Gemma3VisionConfig, threads: Int? = nil,
                            precision: Precision = .fast, name: String = "the checkpoint") throws(VisionEncoderError) {
        try config.validate(name)
        let (tower, projector) = VisionTensorNaming.detectHuggingFace(source)
        guard let tower else {
            throw .noVisionTower("\(name) has no vision tower tensors (embeddings.patch_embedding.weight under "
                + VisionTensorNaming.towerPrefixes.joined(separator: ", ") + ")")
        }
        guard let projector else {
            throw .missingWeight("mm_soft_emb_norm.weight (under " + VisionTensorNaming.projectorPrefixes.joined(separator: " or ") + ")")
        }
        let naming = VisionTensorNaming.huggingFace(tower: tower, projector: projector)
        let weights = try VisionWeights(source: source, naming: { _ in naming }, softEmbNormOffset: 1, config: config)
        self.init(config: config, weights: weights, naming: naming, threads: threads, precision: precision)
    }

    /// Opens a llama.cpp mmproj GGUF file.
    public static func load(mmproj path: String, threads: Int? = nil, precision: Precision = .fast) throws(VisionEncoderError) -> VisionEncoder {
        let file: GGUFFile
        do { file = try GGUFFile(path: path) } catch { throw .format(.inFile(path: path, error: error)) }
        return try VisionEncoder(mmproj: file, threads: threads, precision: precision, name: path)
    }

    /// Binds an mmproj file already parsed. Its soft-embedding norm is stored as 1 + w; layers whose ffn_up /
    /// ffn_down hold fc2 / fc1 (old converter) are read by shape.
    public convenience init(mmproj file: GGUFFile, threads: Int? = nil, precision: Precision = .fast,
                            name: String = "mmproj") throws(VisionEncoderError) {
        let config = try Gemma3VisionConfig(mmproj: file, file: name)
        let s = config.siglip
        let weights = try VisionWeights(source: file, naming: { layer in
            .mmproj(swappedFFN: layer.map { VisionTensorNaming.mmprojSwapsFFN(file, layer: $0, config: s) } ?? false)
        }, softEmbNormOffset: 0, config: config)
        let naming = VisionTensorNaming.mmproj(swappedFFN: VisionTensorNaming.mmprojSwapsFFN(file, layer: 0, config: s))
        self.init(config: config, weights: weights, naming: naming, threads: threads, precision: precision)
    }
}
