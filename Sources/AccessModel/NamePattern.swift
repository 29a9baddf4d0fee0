/// A name glob: the devices of an `allow` rule or a replay (`door-*`, `lift-?`), the event types of `tail --type`
/// or a replay (`access.*`). `*` matches any run of characters, `?` one character, everything else itself.
public struct NamePattern: Sendable, Hashable, CustomStringConvertible {
    public let text: String
    private let pattern: [Unicode.Scalar]

    /// Refuses an empty pattern and characters that cannot occur in a device id of a topic (`/`, `+`, `#`, spaces).
    public init?(_ text: String) {
        guard !text.isEmpty, text.count <= 128,
              !text.unicodeScalars.contains(where: { "/+#".unicodeScalars.contains($0) || $0.properties.isWhitespace || $0.value < 0x20 })
        else { return nil }
        self.text = text
        pattern = Array(text.unicodeScalars)
    }

    public var description: String { text }

    public func matches(_ name: String) -> Bool {
        let subject = Array(name.unicodeScalars)
        // Iterative wildcard matching with one backtrack point: linear in practice, never exponential.
        var p = 0, s = 0
        var star: Int?, starMatch = 0
        while s < subject.count {
            if p < pattern.count, pattern[p] == "?" || (pattern[p] != "*" && pattern[p] == subject[s]) {
                p += 1
                s += 1
            } else if p < pattern.count, pattern[p] == "*" {
                star = p
                starMatch = s
                p += 1
            } else if let starAt = star {
                p = starAt + 1
                starMatch += 1
                s = starMatch
            } else {
                return false
            }
        }
        while p < pattern.count, pattern[p] == "*" { p += 1 }
        return p == pattern.count
    }
}
