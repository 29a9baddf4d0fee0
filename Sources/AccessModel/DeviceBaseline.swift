/// The last image of a map-2 device whose changes the journal has committed (SPEC 3.5): what the rules compare
/// the next poll with, so a restarted gateway neither repeats nor invents events.
public struct DeviceBaseline: Sendable, Equatable {
    /// The profile's layout and rules the image was read under (`PolledMap.fingerprint`).
    public var fingerprint: String
    public var image: [UInt16]
    /// Wall-clock milliseconds when the journal saved it, when known: how long ago the rules last saw these values.
    public var savedMillis: Int64?

    public init(fingerprint: String, image: [UInt16], savedMillis: Int64? = nil) {
        self.fingerprint = fingerprint
        self.image = image
        self.savedMillis = savedMillis
    }

    /// The image as hex words, as the journal stores it.
    public var imageText: String {
        image.map { w in
            let hex = String(w, radix: 16)
            return String(repeating: "0", count: 4 - hex.count) + hex
        }.joined()
    }

    /// Reads `imageText` back; nil when it is not whole hex words.
    public init?(fingerprint: String, imageText: String, savedMillis: Int64? = nil) {
        let bytes = Array(imageText.utf8)
        guard bytes.count % 4 == 0 else { return nil }
        var image: [UInt16] = []
        for start in stride(from: 0, to: bytes.count, by: 4) {
            guard let word = UInt16(String(decoding: bytes[start..<(start + 4)], as: UTF8.self), radix: 16) else { return nil }
            image.append(word)
        }
        self.init(fingerprint: fingerprint, image: image, savedMillis: savedMillis)
    }
}
