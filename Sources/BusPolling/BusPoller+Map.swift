import AccessModel
import DeviceProfiles
import ModbusTransport

extension BusPoller {
    /// One poll of a map-2 device (SPEC 3.5): its planned requests, the state it publishes, and what its rules make
    /// of the change since the last poll. The events and the new image go on the ring together (the last entry
    /// flagged), and the journal writer commits them with the image as the device's baseline.
    func pollMap(_ device: inout PolledDevice, map: PolledMap) throws(ModbusError) {
        if !device.baselineLoaded { device.loadBaseline(map) }
        let unit = device.config.unit
        let read = try map.readImage(registers: { read, words throws(ModbusError) in
            try transact { c throws(ModbusError) in
                try c.readRegisters(unit: unit, address: read.address, count: read.count, input: read.table == .input, into: words)
            }
        }, bits: { read, bits throws(ModbusError) in
            try transact { c throws(ModbusError) in
                try c.readBits(unit: unit, address: read.address, count: read.count, discreteInputs: read.table == .discreteInputs, into: bits)
            }
        })
        succeeded(&device)  // device.online goes on the ring before anything the poll derives
        if !map.state.isEmpty {
            board.update(slot: device.config.slot, fields: MapReading(map: map, image: read).state())
        }
        let observed = Timestamp.now.millisecondsSinceEpoch
        // A value that reads as none (a BCD register caught mid-update) keeps its last valid value for the rules.
        let (image, invalid) = RuleEngine.settled(map, previous: device.mapImage, current: read)
        if !invalid.isEmpty {
            device.metrics.badRecords.increment(by: Int64(invalid.count))
            logger.notice("device shows no valid value in \(invalid.map { map.fields[$0].name }.joined(separator: ", ")); the rules keep the last valid one",
                          metadata: ["device": "\(device.config.id)", LogKind.key: "\(LogKind.modbusBadReply)"])
        }
        // Counters may have grown by max_step per poll interval since the last image (an outage, a restart).
        let intervals = device.mapImageMillis.map { UInt64(max(1, (observed - $0) / max(device.config.pollMillis, 1))) } ?? 1
        let emissions = RuleEngine.evaluate(map, previous: device.mapImage, current: image, intervals: intervals)
        let followed = RuleEngine.followedValues(map, image: image)
        defer {
            device.mapImage = image
            device.mapImageMillis = observed
        }
        guard !emissions.isEmpty || device.journalledFollowed != followed else { return }
        let slot = device.config.slot
        for (index, emission) in emissions.enumerated() {
            enqueue(emission.record(device: slot, image: image, last: index == emissions.count - 1, observedAtMillis: observed))
        }
        if emissions.isEmpty {
            var baseline = EventRecord(origin: .baseline, device: slot, boot: RuleEngine.Emission.lastOfPoll, observedAtMillis: observed)
            for (i, word) in image.prefix(32).enumerated() { baseline.words[i] = word }
            enqueue(baseline)
        } else {
            device.link.lastEventMillis.store(observed, ordering: .relaxed)
            device.metrics.lastEvent.record(Double(observed) / 1000)
            for emission in emissions where emission.variant != .event {
                logger.warning(emission.variant == .eventsLost
                    ? "device overwrote \(emission.number) latest event(s) between two polls"
                    : "a counter of the device went backwards (restarted or reset)", metadata: ["device": "\(device.config.id)"])
            }
        }
        device.journalledFollowed = followed
        journalBell.ring()
    }
}
