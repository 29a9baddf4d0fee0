import AccessModel

/// A receipt from the centre (SPEC 4.3): every event of `epoch` with `gwseq` ≤ `through`, and those in each inclusive
/// range, is durably stored there. Signed like a command by an issuer whose `allow` rules grant `receipt`.
public struct Receipt: Sendable, Equatable {
    /// At most this many ranges (SPEC 4.3).
    public static let maxRanges = 64
    /// Places are JSON integers a JavaScript or Python centre writes exactly: at most 2^53 - 1.
    public static let maxPlace: Int64 = 9_007_199_254_740_991
    /// A receipt is a few hundred bytes; 64 ranges of two 16-digit numbers fit in well under this.
    public static let maxPayloadBytes = 8 * 1024

    public var issuer: String
    public var time: Timestamp
    public var epoch: String
    public var through: Int64
    public var ranges: [ClosedRange<Int64>]

    public init(issuer: String, time: Timestamp, epoch: String, through: Int64, ranges: [ClosedRange<Int64>]) {
        self.issuer = issuer
        self.time = time
        self.epoch = epoch
        self.through = through
        self.ranges = ranges
    }

    /// Reads a receipt payload; nil when it is malformed: not a JSON object of that shape, an issuer outside
    /// `[A-Za-z0-9._:-]{1,64}`, an epoch that is not 1 to 32 lowercase hex digits, a time that is not strict RFC 3339,
    /// a negative or huge number, a range that is not `[first, last]` with first ≤ last, ranges not ascending or
    /// overlapping, or more than 64 of them. Pure: the fuzz target `receipt` calls it on arbitrary bytes.
    public static func parse(_ payload: some Collection<UInt8>) -> Receipt? {
        guard payload.count <= maxPayloadBytes, let body = try? JSONValue(parsing: payload, maxDepth: 4),
              case .object = body,
              case let .string(issuer)? = body["issuer"], RequestEnvelope.isRequestID(issuer),
              case let .string(timeText)? = body["time"], let time = Timestamp(strictRFC3339: timeText),
              case let .string(epoch)? = body["epoch"], isEpoch(epoch),
              case let .int(through)? = body["through"], (0...maxPlace).contains(through)
        else { return nil }
        var ranges: [ClosedRange<Int64>] = []
        switch body["ranges"] {
        case nil, .null?: break
        case let .array(items)?:
            guard items.count <= maxRanges else { return nil }
            for item in items {
                guard case let .array(pair) = item, pair.count == 2,
                      case let .int(first) = pair[0], case let .int(last) = pair[1],
                      (1...maxPlace).contains(first), (first...maxPlace).contains(last)
                else { return nil }
                if let previous = ranges.last, first <= previous.upperBound { return nil }
                ranges.append(first...last)
            }
        default: return nil
        }
        return Receipt(issuer: issuer, time: time, epoch: epoch, through: through, ranges: ranges)
    }

    /// 1 to 32 lowercase hex digits (a journal's epoch is 16).
    static func isEpoch(_ text: String) -> Bool {
        (1...32).contains(text.utf8.count)
            && text.utf8.allSatisfy { (48...57).contains($0) || (97...102).contains($0) }
    }

    /// The bytes of a receipt payload, as a centre writes them (tests, the bench, `Examples/subscriber.py` does the same).
    public var payload: [UInt8] {
        var fields: [(String, JSONValue)] = [
            ("issuer", .string(issuer)), ("time", .string(time.rfc3339)), ("epoch", .string(epoch)), ("through", .int(through)),
        ]
        if !ranges.isEmpty {
            fields.append(("ranges", .array(ranges.map { .array([.int($0.lowerBound), .int($0.upperBound)]) })))
        }
        var bytes: [UInt8] = []
        JSONValue.object(fields).write(to: &bytes)
        return bytes
    }
}

/// Why the gateway ignored a receipt (SPEC 4.3); the label of `accessgw_receipts_ignored_total`.
public enum ReceiptIgnored: String, Error, Sendable, Hashable, CaseIterable {
    case unsigned
    case badSignature = "bad_signature"
    case notPermitted = "not_permitted"
    case otherEpoch = "other_epoch"
    /// Its `through` is lower than the one already applied.
    case stale
    case malformed
}

extension RequestAuthority {
    /// The permission a receipt's issuer needs (an `allow` rule's command, for the gateway's id as device).
    public static let receiptPermission = "receipt"

    /// Decides a receipt message in SPEC 4.3's order: a payload that does not parse is `malformed`; then it must
    /// be signed (even under `require_signature: false`: an unsigned receipt would let anyone stop re-sends), by
    /// the issuer it names, whose rules grant `receipt` for `gateway`; then be for `epoch`, and not go below
    /// `appliedThrough` (the `through` of the receipt applied last). Pure: no broker, no journal.
    public func decideReceipt(topic: String, payload: some Collection<UInt8>, signature: String?, gateway: String,
                              epoch: String, appliedThrough: Int64?) -> Result<Receipt, ReceiptIgnored> {
        guard let receipt = Receipt.parse(payload) else { return .failure(.malformed) }
        guard let signature, !signature.isEmpty else { return .failure(.unsigned) }
        guard case .accepted = authenticate(issuer: receipt.issuer, topic: topic, payload: payload, signature: signature)
        else { return .failure(.badSignature) }
        guard let issuer = issuers[receipt.issuer], issuer.permits(device: gateway, action: Self.receiptPermission)
        else { return .failure(.notPermitted) }
        guard receipt.epoch == epoch else { return .failure(.otherEpoch) }
        if let appliedThrough, receipt.through < appliedThrough { return .failure(.stale) }
        return .success(receipt)
    }
}
