// The vision side of Gemma 3 as data: the SigLIP tower's sizes (transformers' SiglipVisionConfig names) and the
// projector / soft-token facts of Gemma3Config (mm_tokens_per_image, boi/eoi/image token ids, the text width).
// Readers: config.json (SiglipConfig+HuggingFace.swift) and an mmproj GGUF's clip.* metadata (SiglipConfig+GGUF.swift).
// Every size is read, none assumed: the fixtures are tiny (hidden 32, 224 px) and the released models are 1152 wide.

/// SigLIP vision-tower hyperparameters.
public struct SiglipConfig: Sendable, Equatable {
    /// Width of the tower (1152 for So400m).
    public var hiddenSize: Int
    /// MLP width (4304).
    public var intermediateSize: Int
    public var numHiddenLayers: Int
    public var numAttentionHeads: Int
    public var numChannels: Int
    /// Side of the square input image in pixels (896).
    public var imageSize: Int
    /// Side of a square patch (14).
    public var patchSize: Int
    /// LayerNorm epsilon; also the projector's RMSNorm epsilon (transformers uses the vision config's).
    public var layerNormEps: Float

    public init(hiddenSize: Int, intermediateSize: Int, numHiddenLayers: Int, numAttentionHeads: Int, numChannels: Int = 3,
                imageSize: Int, patchSize: Int, layerNormEps: Float = 1e-6) {
        self.hiddenSize = hiddenSize
        self.intermediateSize = intermediateSize
        self.numHiddenLayers = numHiddenLayers
        self.numAttentionHeads = numAttentionHeads
        self.numChannels = numChannels
        self.imageSize = imageSize
        self.patchSize = patchSize
        self.layerNormEps = layerNormEps
    }

    /// SigLIP So400m/14 at 896 x 896, as Gemma 3 4B, 12B and 27B configure it.
    public static let so400m896 = SiglipConfig(hiddenSize: 1152, intermediateSize: 4304, numHiddenLayers: 27, numAttentionHeads: 16,
                                               imageSize: 896, patchSize: 14)

    public var headDim: Int { hiddenSize / numAttentionHeads }
    /// Patches along one side (the patch convolution is "valid": pixels past the last whole patch are unused).
    public var patchesPerSide: Int { imageSize / patchSize }
    /// Patches per image (= position embeddings).
    public var numPatches: Int { patchesPerSide * patchesPerSide }
    /// Elements of one flattened patch, in (channel, row, column) order.
    public var patchLength: Int { numChannels * patchSize * patchSize }
    /// Floats of one image's pixel values (channels x imageSize x imageSize).
    public var pixelsPerImage: Int { numChannels * imageSize * imageSize }

    /// Checks what the forward pass relies on; `source` names the config in messages.
    func validate(_ source: String) throws(VisionEncoderError) {
        func bound(_ name: String, _ v: Int, _ limit: Int) throws(VisionEncoderError) {
            guard v >= 1, v <= limit else { throw .config("\(source): \(name) = \(v) is outside 1...\(limit)") }
        }
        try bound("hidden_size", hiddenSize, 1 << 16)
        try bound("intermediate_size", intermediateSize, 1 << 18)
        try bound("num_hidden_layers", numHiddenLayers, 1024)
        try bound("num_attention_heads", numAttentionHeads, hiddenSize)
        try bound("num_channels", numChannels, 16)
        try bound("image_size", imageSize, 1 << 14)
        try bound("patch_size", patchSize, imageSize)
        guard hiddenSize % numAttentionHeads == 0 else {
            throw .config("\(source): hidden_size \(hiddenSize) is not a multiple of num_attention_heads \(numAttentionHeads)")
        }
        guard layerNormEps.isFinite, layerNormEps >= 0 else { throw .config("\(source): layer_norm_eps \(layerNormEps) is not a non-negative number") }
        // The one activation buffer that the weights' sizes do not bound (tokens x intermediate) stays below 512 MB:
        // So400m at 896 px needs 17.6M floats.
        guard numPatches <= 1 << 16, numPatches * intermediateSize <= 1 << 27 else {
            throw .config("\(source): \(numPatches) patches of width \(intermediateSize) is more than this encoder allocates")
        }
    }
}

/// Gemma 3's vision side: the SigLIP tower plus the projector that pools its output to `mmTokensPerImage` soft tokens
/// of the text model's width, and the token ids that frame them in a prompt.
public struct Gemma3VisionConfig: Sendable, Equatable {
    public var siglip: SiglipConfig
    /// Soft tokens per image (256 = 16 x 16 for the released models).
    public var mmTokensPerImage: Int
    /// The text model's width: the projector's output width.
    public var textHiddenSize: Int
    /// `<start_of_image>` (255999), `<end_of_image>` (256000), `<image_soft_token>` (262144).
    public var boiTokenIndex: Int
    public var eoiTokenIndex: Int
    public var imageTokenIndex: Int

    public init(siglip: SiglipConfig, mmTokensPerImage: Int = 256, textHiddenSize: Int, boiTokenIndex: Int = 255_999,
                eoiTokenIndex: Int = 256_000, imageTokenIndex: Int = 262_144) {
        self.siglip = siglip
        self.mmTokensPerImage = mmTokensPerImage
        self.textHiddenSize = textHiddenSize
        self.boiTokenIndex = boiTokenIndex
        self.eoiTokenIndex = eoiTokenIndex
        self.imageTokenIndex = imageTokenIndex
    }

    /// Soft tokens along one side of the pooled grid (16).
    public var tokensPerSide: Int { Int(Double(mmTokensPerImage).squareRoot().rounded()) }
    /// Side of the average-pooling window over the patch grid: patches per side / tokens per side (64 / 16 = 4), as
    /// Gemma3MultiModalProjector computes it.
    public var poolKernel: Int { siglip.patchesPerSide / max(1, tokensPerSide) }

    func validate(_ source: String) throws(VisionEncoderError) {
        try siglip.validate(source)
        guard textHiddenSize >= 1, textHiddenSize <= 1 << 16 else {
            throw .config("\(source): the text hidden size \(textHiddenSize) is outside 1...65536")
        }
        let t = tokensPerSide
        guard mmTokensPerImage >= 1, t * t == mmTokensPerImage else {
            throw .config("\(source): mm_tokens_per_image \(mmTokensPerImage) is not a square number of tokens")
        }
        guard siglip.patchesPerSide % t == 0 else {
            throw .config("\(source): \(siglip.patchesPerSide) patches per side do not pool evenly into \(t) tokens per side "
                + "(mm_tokens_per_image \(mmTokensPerImage))")
        }
    }
}
