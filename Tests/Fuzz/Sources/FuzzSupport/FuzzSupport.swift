import CFuzzer
#if canImport(Glibc)
import Glibc
#endif

/// What every fuzz target shares: libFuzzer's driver, and its input as bytes, text or register words.
///
/// A target is one file, Targets/NAME/main.swift, that hands each input to the same public function the daemon
/// calls on such input:
///
///     import FuzzSupport
///     import DeviceProfiles
///     fuzz { input in _ = try? DeviceProfile.parse(input.text, file: "fuzz.yaml") }
///
/// Any trap (precondition, overflow, index out of range, force unwrap) or AddressSanitizer report is a finding.
/// (SwiftPM gives every executable a `main` of its own, so libFuzzer's is not used: `fuzz` runs its driver.)
public func fuzz(_ body: @escaping (FuzzInput) -> Void) -> Never {
    target = body
    var argc = CommandLine.argc
    var argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>? = CommandLine.unsafeArgv
    exit(LLVMFuzzerRunDriver(&argc, &argv) { data, size in
        target!(FuzzInput(data, size))
        return 0
    })
}

nonisolated(unsafe) private var target: ((FuzzInput) -> Void)?

public struct FuzzInput {
    public let bytes: UnsafeBufferPointer<UInt8>

    public init(_ data: UnsafePointer<UInt8>?, _ size: Int) {
        bytes = UnsafeBufferPointer(start: size > 0 ? data : nil, count: size)
    }

    public init(_ bytes: UnsafeBufferPointer<UInt8>) { self.bytes = bytes }

    /// The input as text (invalid UTF-8 repaired), as a file read with `String(decoding:as:)` would be.
    public var text: String { String(decoding: bytes, as: UTF8.self) }

    /// The input as 16-bit register words, big-endian pairs (an odd last byte is dropped).
    public var words: [UInt16] {
        stride(from: 0, to: bytes.count - 1, by: 2).map { UInt16(bytes[$0]) << 8 | UInt16(bytes[$0 + 1]) }
    }

    /// The first byte as a selector among `count` choices (0 for empty input), and the rest of the input.
    public func split(choices count: Int) -> (choice: Int, rest: UnsafeBufferPointer<UInt8>) {
        guard let first = bytes.first else { return (0, bytes) }
        return (Int(first) % count, UnsafeBufferPointer(rebasing: bytes.dropFirst()))
    }
}

/// Paths in the repository the targets read (vendor profiles), found from this file's place.
public enum Repository {
    public static let root: String = {
        var path = #filePath
        for _ in 0..<5 { path = String(path[..<(path.lastIndex(of: "/") ?? path.startIndex)]) }
        return path
    }()
    public static var devices: String { root + "/Devices" }
}

/// libFuzzer's own `main` (pulled in by -sanitize=fuzzer, then replaced by the target's through SwiftPM's
/// `--defsym main=…`) needs this symbol to link; inputs reach the target the same way through either.
@_cdecl("LLVMFuzzerTestOneInput")
public func testOneInput(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    target?(FuzzInput(data, size))
    return 0
}
