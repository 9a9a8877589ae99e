// `gemma pull`'s pure parts (issue 24): references, the choice of files, quantization names, git blob ids, and the
// cache's layout. The protocol itself is exercised against a loopback mirror by scripts/pull-tests.sh.
import Foundation
import GemmaHub
import Testing

@Suite struct HubTests {
    @Test func referencesParseAndPathsAreNotReferences() {
        #expect(HubReference("google/gemma-3-270m") == HubReference(repo: "google/gemma-3-270m"))
        #expect(HubReference("ggml-org/gemma-3-4b-it-GGUF:Q8_0") == HubReference(repo: "ggml-org/gemma-3-4b-it-GGUF", selector: "Q8_0"))
        #expect(HubReference("a/b@v1.0:sub/model.gguf") == HubReference(repo: "a/b", revision: "v1.0", selector: "sub/model.gguf"))
        for text in ["./model.gguf", "/abs/path", "~/m", "model.gguf", "a/b/c", "a/", "/b", "a/b:", "a/b@", "-a/b", "a/b.", "a b/c", "a/b:../x"] {
            #expect(HubReference(text) == nil, "\(text)")
        }
        #expect(HubReference("a/b@main:Q4_0")!.description == "a/b:Q4_0")
        #expect(HubReference("hf.co/unsloth/gemma-3-270m-it-GGUF:Q8_0") == HubReference(repo: "unsloth/gemma-3-270m-it-GGUF", selector: "Q8_0"))
        #expect(HubReference("https://huggingface.co/google/gemma-3-1b-it") == HubReference(repo: "google/gemma-3-1b-it"))
    }

    @Test func quantizationNamesMatchBetweenSeparatorsOnly() {
        #expect(HubClient.matches(quant: "Q4_K_M", file: "gemma-3-4b-it-Q4_K_M.gguf"))
        #expect(HubClient.matches(quant: "q4_k_m", file: "sub/gemma-3-4b-it-Q4_K_M.gguf"))
        #expect(!HubClient.matches(quant: "Q4_K", file: "gemma-3-4b-it-Q4_K_M.gguf"))
        #expect(!HubClient.matches(quant: "Q4_0", file: "gemma-3-4b-it-IQ4_0.gguf"))
        #expect(HubClient.matches(quant: "F16", file: "mmproj-model-f16.gguf"))
        #expect(!HubClient.matches(quant: "F16", file: "mmproj-model-bf16.gguf"))
    }

    @Test func choosingFiles() throws {
        let gguf = ["README.md", "gemma-3-4b-it-Q8_0.gguf", "gemma-3-4b-it-Q4_K_M.gguf", "gemma-3-4b-it-F16.gguf",
                    "mmproj-model-bf16.gguf", "mmproj-model-f16.gguf"]
        let d = try HubClient.choose(HubReference(repo: "o/r"), paths: gguf)
        #expect(d.files == ["gemma-3-4b-it-Q4_K_M.gguf", "mmproj-model-f16.gguf"] && d.model == "gemma-3-4b-it-Q4_K_M.gguf")
        #expect(d.mmproj == "mmproj-model-f16.gguf")
        #expect(try HubClient.choose(HubReference(repo: "o/r", selector: "q8_0"), paths: gguf).model == "gemma-3-4b-it-Q8_0.gguf")
        #expect(try HubClient.choose(HubReference(repo: "o/r", selector: "README.md"), paths: gguf).files == ["README.md"])
        #expect(throws: HubError.self) { try HubClient.choose(HubReference(repo: "o/r", selector: "Q5_K_M"), paths: gguf) }
        // Google's QAT repositories hold one Q4_0 file: taken when nothing is preferred before it.
        #expect(try HubClient.choose(HubReference(repo: "o/r"), paths: ["gemma-3-1b-it-q4_0.gguf"]).model == "gemma-3-1b-it-q4_0.gguf")
        // A split file comes whole.
        let split = ["m-Q8_0-00002-of-00002.gguf", "m-Q8_0-00001-of-00002.gguf", "m-Q4_K_M.gguf"]
        let s = try HubClient.choose(HubReference(repo: "o/r", selector: "Q8_0"), paths: split)
        #expect(s.files == ["m-Q8_0-00001-of-00002.gguf", "m-Q8_0-00002-of-00002.gguf"] && s.model == "m-Q8_0-00001-of-00002.gguf")
        // A Hugging Face folder: the model's files and nothing else.
        let folder = ["README.md", ".gitattributes", "config.json", "generation_config.json", "model-00001-of-00002.safetensors",
                      "model-00002-of-00002.safetensors", "model.safetensors.index.json", "tokenizer.model", "tokenizer.json",
                      "tokenizer_config.json", "special_tokens_map.json", "pytorch_model.bin", "original/params.json",
                      "preprocessor_config.json", "processor_config.json", "chat_template.json"]
        let f = try HubClient.choose(HubReference(repo: "o/r"), paths: folder)
        #expect(f.model == "" && f.mmproj == nil)
        #expect(Set(f.files) == ["config.json", "generation_config.json", "model-00001-of-00002.safetensors",
                                 "model-00002-of-00002.safetensors", "model.safetensors.index.json", "tokenizer.model",
                                 "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "preprocessor_config.json",
                                 "processor_config.json", "chat_template.json"])
        #expect(throws: HubError.self) { try HubClient.choose(HubReference(repo: "o/r"), paths: ["README.md", "pytorch_model.bin", "config.json"]) }
    }

    /// Git's own blob ids (`git hash-object`): of "hello\n", of nothing, of 1,000 x's (16 blocks).
    @Test func gitBlobIDs() throws {
        func id(_ s: String) -> String {
            var h = SHA1()
            h.update(Array("blob \(s.utf8.count)\0".utf8) + Array(s.utf8))
            return HubClient.hex(h.finalize())
        }
        #expect(id("hello\n") == "ce013625030ba8dba906f756967f9e9ca394464a")
        #expect(id("") == "e69de29bb2d1d6434b8b29ae775ad8c2e48c5391")
        #expect(id(String(repeating: "x", count: 1000)) == "14c7dfdd4258dec5c0e9d2e919bd249bd674be1f")
    }

    @Test func cacheLocationFollowsTheHubsVariables() {
        #expect(HubCache(environment: ["HF_HUB_CACHE": "/c"]).root == "/c")
        #expect(HubCache(environment: ["HF_HOME": "/h", "XDG_CACHE_HOME": "/x"]).root == "/h/hub")
        #expect(HubCache(environment: ["XDG_CACHE_HOME": "/x"]).root == "/x/huggingface/hub")
        #expect(HubCache(root: "/c").folder("google/gemma-3-1b-it") == "/c/models--google--gemma-3-1b-it")
    }

    @Test func snapshotsLinkRelativelyAndRefsNameCommits() throws {
        let root = FileManager.default.temporaryDirectory.appendingPathComponent("hub-\(UUID().uuidString)").path
        defer { try? FileManager.default.removeItem(atPath: root) }
        let cache = HubCache(root: root), commit = String(repeating: "ab", count: 20)
        try FileManager.default.createDirectory(atPath: cache.folder("o/r") + "/blobs", withIntermediateDirectories: true)
        try Data("x".utf8).write(to: URL(fileURLWithPath: cache.folder("o/r") + "/blobs/e1"))
        try cache.link("o/r", commit: commit, path: "sub/f.json", etag: "e1")
        try cache.setRef("o/r", revision: "main", commit: commit)
        #expect(try FileManager.default.destinationOfSymbolicLink(atPath: cache.snapshot("o/r", commit: commit) + "/sub/f.json") == "../../../blobs/e1")
        #expect(try String(contentsOfFile: cache.snapshot("o/r", commit: commit) + "/sub/f.json", encoding: .utf8) == "x")
        #expect(cache.commit("o/r", revision: "main") == commit)
        #expect(cache.commit("o/r", revision: commit) == commit)
        #expect(cache.commit("o/r", revision: "dev") == nil)
        let e = try #require(cache.entry("o/r"))
        #expect(e.bytes == 1 && e.refs == ["main": commit] && e.snapshots[commit]?.map(\.path) == ["sub/f.json"])
        #expect(try cache.remove("o/r") && cache.entry("o/r") == nil)
    }
}
