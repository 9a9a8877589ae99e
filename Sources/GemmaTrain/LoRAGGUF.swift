// LoRA adapters as a GGUF adapter file, the form llama.cpp's convert_lora_to_gguf.py writes from a PEFT folder and
// `--lora FILE` (src/llama-adapter.cpp) loads onto the base GGUF: general.type "adapter", the base's
// general.architecture, adapter.type "lora", adapter.lora.alpha (f32; llama.cpp scales the product by alpha / rank,
// the rank read from the tensors), and for each adapted weight W named as in the base (blk.N.attn_q.weight) the
// tensors W.lora_a (PyTorch shape [rank, in], ggml dimensions [in, rank]) and W.lora_b ([out, rank], ggml
// [rank, out]) in f32. llama.cpp adds scale (x Aᵀ) Bᵀ to x Wᵀ, as LoRA.swift does.
import GemmaFormats
import GemmaModel

extension LoRALayout {
    /// Writes `adapters` as a llama.cpp LoRA adapter GGUF at `path` (under a temporary name first) for the GGUF
    /// `checkpoint` they were trained on; every adapted weight must be in it with the adapter's widths.
    public func writeGGUF(_ adapters: [Float], to path: String, like checkpoint: Checkpoint) throws(TrainError) {
        guard adapters.count == count else { throw .input("\(adapters.count) adapter values for a LoRA layout of \(count)") }
        guard let base = checkpoint.gguf else {
            throw .input("\(checkpoint.path): a GGUF LoRA adapter applies to a GGUF base model; this one is not a GGUF file")
        }
        var metadata = GGUFMetadata()
        metadata["general.architecture"] = .string(base.metadata["general.architecture"]?.string ?? "gemma3")
        metadata["general.type"] = .string("adapter")
        if let name = base.metadata["general.name"]?.string { metadata["general.name"] = .string(name + " LoRA") }
        metadata["adapter.type"] = .string("lora")
        metadata["adapter.lora.alpha"] = .float32(config.alpha)
        metadata["general.quantization_version"] = .uint32(2)
        // llama.cpp refuses an adapter whose widths differ from the base tensor's ([in, out] in ggml order).
        for e in entries {
            let name = checkpoint.naming.name(of: .layer(e.layer, e.module))
            guard let w = base.tensor(named: name) else { throw .input("\(checkpoint.path) has no tensor \(name) to adapt") }
            guard w.dimensions == [e.inDim, e.outDim] else {
                throw .input("\(name) is \(w.dimensions) in \(checkpoint.path), the adapter is for [\(e.inDim), \(e.outDim)]")
            }
        }
        var writer = GGUFWriter(metadata: metadata)
        let r = config.rank
        do {
            for e in entries {
                let name = checkpoint.naming.name(of: .layer(e.layer, e.module))
                let a = adapters[e.a..<(e.a + r * e.inDim)].withUnsafeBytes { [UInt8]($0) }
                let b = adapters[e.b..<(e.b + e.outDim * r)].withUnsafeBytes { [UInt8]($0) }
                try writer.addTensor(name: name + ".lora_a", type: .f32, dimensions: [e.inDim, r], data: a)
                try writer.addTensor(name: name + ".lora_b", type: .f32, dimensions: [r, e.outDim], data: b)
            }
            try writer.write(to: path)
        } catch { throw .weight("\(path): \(error)") }
    }
}
