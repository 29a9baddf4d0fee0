import AccessModel
import DeviceProfiles
import FuzzSupport

/// Event-log header and record words through the vendor profiles, as the bus poller and the journal writer decode
/// them: every field type, byte and word order, enum and string encoding those profiles use.
let decoders: [RecordDecoder] = ["face-door", "plate-reader", "elevator"].map {
    RecordDecoder(profile: try! DeviceProfile.load(path: "\(Repository.devices)/\($0).yaml"))!
}

fuzz { input in
    let (choice, rest) = input.split(choices: decoders.count)
    let decoder = decoders[choice]
    let words = FuzzInput(rest).words
    let log = decoder.profile.eventLog!
    words.withUnsafeBufferPointer { buffer in
        if buffer.count >= Int(log.headerCount) { _ = log.header(from: buffer, layout: decoder.profile.layout) }
        var base = 0
        while base + log.recordSize <= buffer.count {
            _ = decoder.seq(of: buffer, base: base)
            _ = decoder.event(of: buffer, base: base, device: "d", boot: 1, observedAt: Timestamp(millisecondsSinceEpoch: 0))
            base += log.recordSize
        }
    }
}
