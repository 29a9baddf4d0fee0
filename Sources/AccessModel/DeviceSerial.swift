/// A device's serial number as it goes into event ids (SPEC section 4): the identity block's serial with every
/// byte outside `A-Za-z0-9_-` dropped, at most 16 bytes, kept inline so it rides the ring without allocating.
public struct DeviceSerial: BitwiseCopyable, Sendable, Equatable, CustomStringConvertible {
    public static let capacity = 16
    var bytes: InlineArray<16, UInt8>
    public private(set) var count: UInt8

    /// No serial: the profile has none, so ids are `{boot_id}` alone.
    public static let none = DeviceSerial()

    init() {
        bytes = InlineArray(repeating: 0)
        count = 0
    }

    /// Keeps the bytes of `raw` that may appear in an id, in order; stops at the capacity.
    public init<Bytes: Sequence>(sanitising raw: Bytes) where Bytes.Element == UInt8 {
        self.init()
        for byte in raw where Self.allowed(byte) {
            guard Int(count) < Self.capacity else { break }
            bytes[Int(count)] = byte
            count += 1
        }
    }

    public init(sanitising text: String) { self.init(sanitising: text.utf8) }

    static func allowed(_ byte: UInt8) -> Bool {
        switch byte {
        case UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "a")...UInt8(ascii: "z"),
             UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "_"), UInt8(ascii: "-"): true
        default: false
        }
    }

    public var isEmpty: Bool { count == 0 }

    /// The serial's bytes, without making a string of them.
    func withBytes<Result>(_ body: (UnsafeBufferPointer<UInt8>) -> Result) -> Result {
        bytes.span.withUnsafeBufferPointer { body(UnsafeBufferPointer(rebasing: $0[..<Int(count)])) }
    }

    public var description: String {
        String(unsafeUninitializedCapacity: Int(count)) { buffer in
            for i in 0..<Int(count) { buffer[i] = bytes[i] }
            return Int(count)
        }
    }

    public static func == (lhs: DeviceSerial, rhs: DeviceSerial) -> Bool {
        lhs.count == rhs.count && (0..<Int(lhs.count)).allSatisfy { lhs.bytes[$0] == rhs.bytes[$0] }
    }
}
