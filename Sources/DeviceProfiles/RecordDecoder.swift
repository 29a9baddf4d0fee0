import AccessModel

/// One record's fields as numbers and text, before an event rule gives them meaning.
public struct DecodedRecord: Sendable {
    /// By `RecordRole.ordinal`; 0 for the subject and for fields the layout lacks.
    var numbers: InlineArray<10, Int64>
    public var subject: String?
    /// Set when the subject's bytes were not valid in the profile's encoding.
    public var subjectFailure: TextEncoding.Failure?
    /// The subject's bytes as read, kept only when they failed to decode (for `subject_hex`); empty otherwise.
    public var subjectBytes: [UInt8]

    public subscript(role: RecordRole) -> Int64 {
        numbers[role.ordinal]
    }
}

/// Something wrong with a record that did not stop it from becoming an event.
public struct RecordProblem: Sendable, Equatable, CustomStringConvertible {
    public var field: String
    public var message: String
    public var description: String { "\(field): \(message)" }

    public init(field: String, message: String) {
        self.field = field
        self.message = message
    }
}

/// Turns event records into normalised events through a profile's record layout and event table.
/// A class: the journal writer and the pollers look it up per record and per turn, and copying a struct would
/// retain and release every reference in its profile each time.
public final class RecordDecoder: Sendable {
    public let profile: DeviceProfile
    let record: RecordLayout
    let layout: WordLayout
    /// The record's integer fields with the slot of `DecodedRecord.numbers` each goes into, its subject and the
    /// subject's encoding: looked up once here, and copied per record without retaining anything.
    let integerFields: [(ordinal: Int, placement: RegisterReading.Placement)]
    let subjectField: RegisterReading.Placement?
    let subjectEncoding: TextEncoding
    let seqField: RegisterReading.Placement?

    public init?(profile: DeviceProfile) {
        guard let log = profile.eventLog else { return nil }
        self.profile = profile
        record = log.record
        layout = profile.layout
        integerFields = RecordRole.allCases.compactMap { role in
            role == .subject ? nil : log.record[role].map { (role.ordinal, RegisterReading.Placement($0)) }
        }
        subjectField = log.record[.subject].map(RegisterReading.Placement.init)
        subjectEncoding = log.record[.subject]?.encoding ?? .ascii
        seqField = log.record[.seq].map(RegisterReading.Placement.init)
    }

    /// Reads the fields of the record at `base` in `words`.
    public func fields(of words: UnsafeBufferPointer<UInt16>, base: Int = 0) -> DecodedRecord {
        let reading = RegisterReading(words: words, layout: layout)
        var decoded = DecodedRecord(numbers: InlineArray(repeating: 0), subject: nil, subjectFailure: nil, subjectBytes: [])
        for index in integerFields.indices {
            decoded.numbers[integerFields[index].ordinal] = reading.integer(integerFields[index].placement, base: base)
        }
        if let field = subjectField {
            // Read into the stack: only a subject that fails to decode keeps its bytes.
            withUnsafeTemporaryAllocation(of: UInt8.self, capacity: field.length) { bytes in
                reading.copyBytes(field, base: base, into: bytes)
                do throws(TextEncoding.Failure) { decoded.subject = try subjectEncoding.decode(UnsafeBufferPointer(bytes)) } catch {
                    decoded.subjectFailure = error
                    decoded.subjectBytes = Array(bytes)
                    decoded.subject = String(decoding: bytes.prefix { $0 != 0 }, as: UTF8.self)
                }
            }
        }
        return decoded
    }

    /// The normalised event for a record of device `device` read at `observedAt` while the device had boot id `boot`.
    /// Unknown codes become `device.unknown_event`; a bad subject is kept lossily and reported, never dropped.
    public func event(of words: UnsafeBufferPointer<UInt16>, base: Int = 0, device: String, boot: UInt16,
                      observedAt: Timestamp) -> (event: NormalisedEvent, problems: [RecordProblem]) {
        let decoded = fields(of: words, base: base)
        var problems: [RecordProblem] = []
        let code = UInt16(truncatingIfNeeded: decoded[.code])
        let rule = profile.events[code]
        var fields: [(String, JSONValue)] = []
        if let rule {
            fields.reserveCapacity(rule.constants.count + rule.fields.count + 2)
            fields += rule.constants
            for (name, source) in rule.fields {
                if let value = source.value(in: decoded) { fields.append((name, value)) }
            }
            if let named = rule.subjectField, let subject = decoded.subject, !subject.isEmpty {
                // A code outside the enum keeps the subject under the neutral name rather than dropping it.
                let name = if case let .string(text)? = named.value(in: decoded) { text } else { "subject" }
                fields.append((name, .string(subject)))
            }
        } else if let subject = decoded.subject, !subject.isEmpty {
            fields.reserveCapacity(2)
            fields.append(("subject", .string(subject)))
        }
        if let failure = decoded.subjectFailure {
            let hex = decoded.subjectBytes.prefix { $0 != 0 }.map { byte in
                let h = String(byte, radix: 16)
                return h.count == 1 ? "0" + h : h
            }.joined()
            fields.append(("subject_hex", .string(hex)))
            problems.append(RecordProblem(field: "subject", message: "\(failure); its bytes are kept as subject_hex"))
        }
        let raw = NormalisedEvent.RawRecord(
            code: code, point: Int16(truncatingIfNeeded: decoded[.point]),
            direction: UInt8(truncatingIfNeeded: decoded[.direction]), value: UInt32(truncatingIfNeeded: decoded[.value]),
            extra: UInt32(truncatingIfNeeded: decoded[.extra]), flags: UInt8(truncatingIfNeeded: decoded[.flags]))
        let time = Timestamp(seconds: UInt32(truncatingIfNeeded: decoded[.time]), millis: UInt16(truncatingIfNeeded: decoded[.millis]))
        let event = NormalisedEvent(
            device: device, origin: .device(boot: boot, seq: UInt32(truncatingIfNeeded: decoded[.seq])),
            type: rule?.type ?? "device.unknown_event", alarm: rule?.alarm ?? false,
            time: time, recordedTime: observedAt, fields: fields, raw: raw)
        return (event, problems)
    }

    /// The seq of the record at `base`, read without decoding the rest.
    public func seq(of words: UnsafeBufferPointer<UInt16>, base: Int = 0) -> UInt32 {
        UInt32(truncatingIfNeeded: RegisterReading(words: words, layout: layout).integer(seqField!, base: base))
    }
}
