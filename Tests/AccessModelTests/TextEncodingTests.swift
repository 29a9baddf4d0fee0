import AccessModel
import Simulators
import Testing

@Suite("text encodings: decoding bytes in memory")
struct TextEncodingTests {
    /// The decoder reads a record's subject into the stack and decodes it there; any collection of bytes decodes the
    /// same, failures included.
    @Test func memoryAndCollectionsDecodeAlike() {
        var random = SeededRandom(seed: 3)
        let samples: [[UInt8]] = [[], [0], [0x41, 0, 0xFF], Array("P-0012".utf8), [0xD4, 0xC6] + Array("A12345".utf8),
                                  Array("云A12345".utf8), [0xD4, 0xC6, 0x81, 0x20], [0xC3], [0x50, 0xFF, 0xFE, 0x31]]
        var inputs = samples
        for _ in 0..<3000 { inputs.append((0..<Int(random.next() % 12)).map { _ in UInt8(truncatingIfNeeded: random.next() >> 13) }) }
        for bytes in inputs {
            for encoding in TextEncoding.allCases {
                let fromMemory = bytes.withUnsafeBufferPointer { memory in
                    Result { () throws(TextEncoding.Failure) in try encoding.decode(memory) }
                }
                let fromSlice = Result { () throws(TextEncoding.Failure) in try encoding.decode(bytes[...]) }
                #expect(describe(fromMemory) == describe(fromSlice), "\(encoding) \(bytes)")
            }
        }
    }

    func describe(_ result: Result<String, TextEncoding.Failure>) -> String {
        switch result {
        case let .success(text): "text \(text.debugDescription)"
        case let .failure(failure): "failure \(failure)"
        }
    }
}
