import AccessModel
import DeviceProfiles

/// Turns ring entries into normalised events: device records through their profile, the gateway's own entries
/// (online, offline, loss, clock skew) by their origin; then applies the privacy settings. Pure.
public struct EventNormaliser: Sendable {
    /// By device slot, in three arrays: a tuple per slot would be copied whole per record, retaining and releasing
    /// every reference in its map.
    let ids: [String]
    let decoders: [RecordDecoder?]
    let maps: [PolledMap?]
    let privacy: PrivacyFilter

    public init(configuration: GatewayConfiguration) {
        self.init(devices: configuration.devices, privacy: configuration.privacy)
    }

    /// A normaliser for `devices` indexed by device slot.
    public init(devices: [GatewayConfiguration.Device], privacy: GatewayConfiguration.Privacy) {
        ids = devices.map(\.id)
        decoders = devices.map { RecordDecoder(profile: $0.profile) }
        maps = devices.map(\.profile.map)
        self.privacy = PrivacyFilter(privacy)
    }

    /// The baseline a map-2 device's derived or baseline entry carries: the image its poll saw.
    public func baseline(of record: EventRecord) -> DeviceBaseline? {
        guard record.origin == .derived || record.origin == .baseline, let map = maps[Int(record.device)] else { return nil }
        return DeviceBaseline(fingerprint: map.fingerprint, image: record.image(count: map.imageWords))
    }

    /// The event for one ring entry, and whatever was wrong with its record.
    public func normalise(_ record: EventRecord) -> (event: NormalisedEvent, problems: [RecordProblem]) {
        let slot = Int(record.device), id = ids[slot]
        let observed = Timestamp(millisecondsSinceEpoch: record.observedAtMillis)
        func gatewayEvent(_ type: String, _ fields: [(String, JSONValue)] = [], alarm: Bool = false) -> NormalisedEvent {
            NormalisedEvent(device: id, origin: .gateway, type: type, alarm: alarm, time: observed,
                            recordedTime: observed, fields: fields)
        }
        switch record.origin {
        case .device:
            guard let decoder = decoders[slot] else {
                return (gatewayEvent("device.unknown_event"), [RecordProblem(field: "record", message: "device has no event log in its profile")])
            }
            var (event, problems) = record.words.span.withUnsafeBufferPointer {
                decoder.event(of: $0, device: id, boot: record.boot, observedAt: observed)
            }
            event.fields = privacy.apply(to: event.fields)
            event.serial = record.serial
            if case let .device(_, seq) = event.origin, seq != record.seq {
                problems.append(RecordProblem(field: "seq", message: "record seq \(seq) differs from the seq polled, \(record.seq)"))
            }
            return (event, problems)
        case .deviceOnline:
            return (gatewayEvent("device.online"), [])
        case .deviceOffline:
            return (gatewayEvent("device.offline"), [])
        case .eventsLost:
            let count = Int64(record.second) - Int64(record.first) + 1
            return (gatewayEvent("gateway.events_lost", [
                ("lost", .object([("count", .int(count)), ("from_seq", .int(Int64(record.first))), ("to_seq", .int(Int64(record.second)))])),
                ("boot", .int(Int64(record.boot))),
            ]), [])
        case .clockSkew:
            return (gatewayEvent("device.clock_skew", [("skew_seconds", .int(Int64(Int32(bitPattern: record.first))))]), [])
        case .derived, .baseline:
            guard let map = maps[slot], record.origin == .derived else {
                return (gatewayEvent("device.unknown_event"), [RecordProblem(field: "record", message: "derived entry for a device without rules")])
            }
            var event = RuleEngine.event(RuleEngine.Emission(record: record), map: map, image: record.image(count: map.imageWords),
                                         device: id, observedAt: observed)
            event.fields = privacy.apply(to: event.fields)
            return (event, [])
        }
    }
}
