import AccessModel
import DeviceProfiles
import FuzzSupport

/// Two polls' images through the map-2 profiles (Devices/), as the bus poller and the journal writer handle them:
/// every field type of those maps into the rule engine, each emission through its ring entry into an event and
/// its CloudEvent JSON, and the state fields.
let maps: [PolledMap] = ["lift-monitor", "turnstile", "card-reader", "barrier-gate"].map {
    try! DeviceProfile.load(path: "\(Repository.devices)/\($0).yaml").map!
}

fuzz { input in
    let (choice, rest) = input.split(choices: maps.count)
    let map = maps[choice]
    let words = FuzzInput(rest).words
    let previous = Array(words.prefix(map.imageWords)), current = Array(words.dropFirst(map.imageWords).prefix(map.imageWords))
    _ = JSONValue.object(MapReading(map: map, image: current).state()).serialized
    let source = EventSource(site: "s", gateway: "g", device: "d", kind: "k")
    for emission in RuleEngine.evaluate(map, previous: previous, current: current) {
        let record = emission.record(device: 0, image: current, last: true, observedAtMillis: 0)
        let event = RuleEngine.event(RuleEngine.Emission(record: record), map: map, image: record.image(count: map.imageWords),
                                     device: "d", observedAt: Timestamp(millisecondsSinceEpoch: 0))
        _ = CloudEvent.json(event, source: source, journalSeq: 1, epoch: "00")
    }
}
