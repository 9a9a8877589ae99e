// Gemma3VisionConfig from a llama.cpp mmproj GGUF: the clip.* metadata that convert_hf_to_gguf.py's
// Gemma3VisionModel writes (MmprojModel.set_gguf_parameters plus projector type "gemma3", layer-norm epsilon, and
// clip.vision.projector.scale_factor only when the pooling window is not 4) and that tools/mtmd/clip.cpp reads
// (n_merge defaults to 4 when the key is absent). The file has no token ids: those belong to the text model's
// vocabulary, so the released ids are taken (255999, 256000, 262144).
import GemmaFormats

extension Gemma3VisionConfig {
    /// Reads an mmproj file's metadata. `file` names it in errors.
    public init(mmproj gguf: GGUFFile, file: String = "mmproj") throws(VisionEncoderError) {
        let m = gguf.metadata
        func int(_ key: String, default fallback: Int? = nil) throws(VisionEncoderError) -> Int {
            guard let v = m[key] else {
                guard let fallback else { throw .config("\(file): metadata \(key) is missing") }
                return fallback
            }
            guard let i = v.int, i >= 1 else { throw .config("\(file): metadata \(key) is \(v.summary), not a positive integer") }
            return i
        }
        if let arch = m["general.architecture"]?.string, arch != "clip" {
            throw .noVisionTower("\(file): general.architecture is \"\(arch)\", not \"clip\": a text model's GGUF holds no vision "
                + "tower (llama.cpp keeps it in a separate mmproj file)")
        }
        let projector = m["clip.vision.projector_type"]?.string ?? m["clip.projector_type"]?.string
        guard projector == "gemma3" else {
            throw .config("\(file): projector type is \(projector.map { "\"\($0)\"" } ?? "missing") "
                + "(clip.projector_type or clip.vision.projector_type), not \"gemma3\"")
        }
        if let has = m["clip.has_vision_encoder"], has.bool != true {
            throw .noVisionTower("\(file): clip.has_vision_encoder is \(has.summary)")
        }
        var eps: Float = 1e-6
        if let e = m["clip.vision.attention.layer_norm_epsilon"] {
            guard let d = e.double, d.isFinite, d >= 0 else {
                throw .config("\(file): metadata clip.vision.attention.layer_norm_epsilon is \(e.summary), not a number")
            }
            eps = Float(d)
        }
        let siglip = SiglipConfig(
            hiddenSize: try int("clip.vision.embedding_length"),
            intermediateSize: try int("clip.vision.feed_forward_length"),
            numHiddenLayers: try int("clip.vision.block_count"),
            numAttentionHeads: try int("clip.vision.attention.head_count"),
            numChannels: 3,
            imageSize: try int("clip.vision.image_size"),
            patchSize: try int("clip.vision.patch_size"),
            layerNormEps: eps)
        try siglip.validate(file)
        let merge = try int("clip.vision.projector.scale_factor", default: 4)
        guard siglip.patchesPerSide % merge == 0 else {
            throw .config("\(file): clip.vision.projector.scale_factor \(merge) does not divide \(siglip.patchesPerSide) patches per side")
        }
        let side = siglip.patchesPerSide / merge
        self.init(siglip: siglip, mmTokensPerImage: side * side, textHiddenSize: try int("clip.vision.projection_dim"))
        try validate(file)
    }
}
