// SHA-256 against FIPS 180-4's examples and Python's hashlib (values computed with hashlib.sha256).
import GemmaFormats
import Testing

@Suite struct SHA256Tests {
    @Test(arguments: [
        ("", "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"),
        ("abc", "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"),
        ("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq", "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1"),
    ])
    func knownDigests(text: String, hex: String) {
        #expect(SHA256.hex(Array(text.utf8)) == hex)
    }

    /// A million 'a's (FIPS 180-4), fed in uneven pieces: the same digest as at once.
    @Test func millionAsInPieces() {
        let a = [UInt8](repeating: 0x61, count: 1_000_000)
        #expect(SHA256.hex(a) == "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0")
        var s = SHA256()
        var i = 0, n = 1
        while i < a.count { let j = min(a.count, i + n); s.update(a[i..<j]); i = j; n = n * 3 % 257 + 1 }
        #expect(s.finalize() == { var t = SHA256(); t.update(a); return t.finalize() }())
    }

    /// Lengths around the 55/56/64-byte padding edges, against hashlib.
    @Test func paddingEdges() {
        let expected: [Int: String] = [
            55: "9f4390f8d30c2dd92ec9f095b65e2b9ae9b0a925a5258e241c9f1e910f734318",
            56: "b35439a4ac6f0948b6d6f9e3c6af0f5f590ce20f1bde7090ef7970686ec6738a",
            63: "7d3e74a05d7db15bce4ad9ec0658ea98e3f06eeecf16b4c6fff2da457ddc2f34",
            64: "ffe054fe7ae0cb6dc65c3af9b61d5209f439851db43d0ba5997337df154668eb",
        ]
        for (n, hex) in expected { #expect(SHA256.hex([UInt8](repeating: 0x61, count: n)) == hex, "\(n) bytes") }
    }
}
