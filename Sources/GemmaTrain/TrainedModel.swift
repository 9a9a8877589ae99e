// Writing trained weights as a model every reader of the input's format can load: a GGUF input gives a GGUF (its
// metadata and tokenizer copied, the trained tensors as f32, any other tensor as it was), a Hugging Face folder a
// folder (config, tokenizer and generation files copied, the weights in one f32 model.safetensors under the input's
// names). Norm weights keep the input's convention (stored 1 + w in GGUF, w in Hugging Face). `gemma quantize`
// makes smaller forms of the result.
import Foundation
import GemmaFormats
import GemmaModel

public enum TrainedModel {
    /// Writes `parameters` (in `layout`) as a model of `checkpoint`'s format at `output` (a .gguf file for a GGUF
    /// checkpoint, else a folder), each file under a temporary name first.
    public static func write(_ parameters: [Float], layout: ParameterLayout, like checkpoint: Checkpoint,
                             to output: String) throws(TrainError) {
        guard parameters.count == layout.count else { throw .input("\(parameters.count) parameters for a layout of \(layout.count)") }
        // Streamed: each tensor's bytes go to the file from where they lie, so writing holds no second copy.
        if let gguf = checkpoint.gguf {
            var trained: [String: ParameterLayout.Entry] = [:]
            for e in layout.entries { trained[checkpoint.naming.name(of: e.weight)] = e }
            let declared = gguf.tensors.map { t in
                trained[t.name].map { GGUFStreamWriter.Tensor(name: t.name, type: .f32, dimensions: $0.shape.reversed()) }
                    ?? GGUFStreamWriter.Tensor(name: t.name, type: t.type, dimensions: t.dimensions)
            }
            var writer: GGUFStreamWriter? = nil
            do {
                writer = try GGUFStreamWriter(path: output, metadata: gguf.metadata, tensors: declared)
                for t in gguf.tensors {
                    if let e = trained[t.name] {
                        try write(parameters, e, to: writer!)
                    } else {
                        try writer!.write(gguf.data(for: t))
                    }
                }
                try writer!.finish()
            } catch {
                writer?.cancel()
                throw .weight("\(output): \(error)")
            }
            return
        }
        guard let input = checkpoint.directory else { throw .input("\(checkpoint.path): only GGUF files and Hugging Face folders can be written back") }
        let fm = FileManager.default
        do {
            try fm.createDirectory(atPath: output, withIntermediateDirectories: true)
            // Everything but the weights and their index comes along (config, tokenizer, generation config, README).
            for name in try fm.contentsOfDirectory(atPath: input).sorted() {
                var isDir: ObjCBool = false
                let from = input + "/" + name, to = output + "/" + name
                guard fm.fileExists(atPath: from, isDirectory: &isDir), !isDir.boolValue,
                      !name.hasSuffix(".safetensors"), !name.hasSuffix(".safetensors.index.json"), !name.hasSuffix(".bin")
                else { continue }
                if fm.fileExists(atPath: to) { try fm.removeItem(atPath: to) }
                try fm.copyItem(atPath: from, toPath: to)
            }
            let writer = try SafetensorsStreamWriter(
                path: output + "/model.safetensors", metadata: [("format", "pt")],
                tensors: layout.entries.map { .init(name: checkpoint.naming.name(of: $0.weight), dtype: .F32, shape: $0.shape) })
            do {
                for e in layout.entries { try write(parameters, e, to: writer) }
                try writer.finish()
            } catch {
                writer.cancel()
                throw error
            }
        } catch { throw .weight("\(output): \(error)") }
    }

    private static func write(_ parameters: [Float], _ e: ParameterLayout.Entry, to writer: some TensorByteStream) throws(FormatError) {
        var failure: FormatError? = nil
        parameters.withUnsafeBytes { p in
            do throws(FormatError) {
                try writer.write(UnsafeRawBufferPointer(rebasing: p[(e.offset * 4)..<((e.offset + e.count) * 4)]))
            } catch { failure = error }
        }
        if let failure { throw failure }
    }
}
