import BusPolling
import DeviceProfiles
import MQTTPublisher
import Simulators

/// The gateway's shells as the schedule drives them: each step does what `BusPoller.serve`/`pollLog`,
/// `JournalWriter.commit`/`acknowledge`, `EventPublisher.run` and `MQTTPublisher`'s callbacks do, around the same
/// pure state machines, with the I/O replaced by the simulated device, journal and broker.
extension FaultSchedule {
    // MARK: Bus poller

    /// `BusPoller.serve` for a device with an event log (no state block or clock: they never hold up the log).
    mutating func serve(_ d: Int) {
        var poller = gateway.pollers[d]
        defer { gateway.pollers[d] = poller }
        do {
            let holdOff = try pollLog(d, &poller)
            poller.nextDue = clock + (holdOff ?? Self.pollMillis)
        } catch {
            note("failed: \(error)")
            if poller.health.pollFailed() == .wentOffline { enqueue(ScheduledRecord(device: d, kind: .offline)) }
            poller.nextDue = clock + poller.health.nextPollDelay(pollMillis: Self.pollMillis)
        }
    }

    /// `BusPoller.run`: a device is served when due, or at once when the journal committed what it emitted.
    func isDue(_ d: Int) -> Bool {
        let poller = gateway.pollers[d]
        if poller.nextDue <= clock { return true }
        return poller.fifo.pendingAck != nil && poller.fifo.nextStep(committed: poller.committed) != .waitForCommit
    }

    /// `BusPoller.pollLog`: a due ack first, then the header or header and window. Returns the hold-off after a
    /// refused ack, nil for the regular poll interval.
    mutating func pollLog(_ d: Int, _ poller: inout ScheduledGateway.Poller) throws(SimulatedDevice.Failure) -> Int64? {
        if case let .writeAck(seq) = poller.fifo.nextStep(committed: poller.committed) {
            let intendedBoot = poller.fifo.boot
            let (released, failure) = devices[d].writeAck(seq, appliedDespiteFailure: rng.chance(0.5))
            note("ack_seq \(seq) -> released \(released.map { "\($0)" } ?? "nothing"), \(failure.map { "\($0)" } ?? "ok")")
            if let released { checkRelease(d, released, intendedBoot: intendedBoot) }
            switch failure {
            case nil: poller.fifo.ackWritten(seq)
            case .refused:
                poller.fifo.ackRejected()
                succeeded(d, &poller)
                return poller.fifo.ackRetryDelay(pollMillis: Self.pollMillis)
            case let failure?: throw failure
            }
        }
        guard case var .read(kind) = poller.fifo.nextStep(committed: poller.committed) else { return nil }
        guard ScheduledGateway.ringCapacity - gateway.ring.count >= 3 + 2 else { return nil }
        while true {
            let (header, seqs) = try devices[d].read(window: kind == .full).get()
            let outcome = poller.fifo.logRead(header, windowSeqs: seqs)
            note("read head \(header.headSeq) tail \(header.tailSeq) boot \(header.bootID) ack \(header.ackSeq) flags \(header.logFlags) window \(seqs.map { "\($0)" } ?? "-") -> emit \(outcome.emit) lost \(outcome.lost.map { "\($0)" } ?? "-") \(outcome.problems)\(outcome.confirmingBoot ? " confirming boot" : "")")
            if outcome.badHeader != nil { throw .garbled }
            succeeded(d, &poller)
            if outcome.confirmingBoot { return nil }  // nothing used: a single read of a new boot_id is not believed
            if kind == .full { devices[d].lastReadByGateway = clock }
            publish(outcome, of: d, header: header, seqs: seqs ?? [])
            guard outcome.readWindowNow, kind == .header,
                  ScheduledGateway.ringCapacity - gateway.ring.count >= 3 + 2 else { return nil }
            kind = .full
        }
    }

    /// `BusPoller.publish`: loss first, then the new records, onto the ring.
    mutating func publish(_ outcome: EventLogStateMachine.Outcome, of d: Int, header: EventLogHeader, seqs: [UInt32]) {
        if let lost = outcome.lost, mutation != .lossReportsDropped {
            checkLossReport(d, boot: header.bootID, lost)
            enqueue(ScheduledRecord(device: d, kind: .lost(boot: header.bootID, range: lost)))
        }
        for index in outcome.emit {
            let type = devices[d].types[SimulatedDevice.key(header.bootID, seqs[index])] ?? -1
            enqueue(ScheduledRecord(device: d, kind: .device(boot: header.bootID, seq: seqs[index], type: type)))
        }
    }

    mutating func succeeded(_ d: Int, _ poller: inout ScheduledGateway.Poller) {
        if poller.health.pollSucceeded() == .cameOnline { enqueue(ScheduledRecord(device: d, kind: .online)) }
    }

    mutating func enqueue(_ record: ScheduledRecord) {
        gateway.ring.append(record)
        if gateway.ring.count > ScheduledGateway.ringCapacity {
            violated("the ring overflowed (\(gateway.ring.count) entries): the poller would block")
        }
    }

    // MARK: Journal writer

    /// One stage of `JournalWriter.run`: take a batch off the ring, commit it, post the committed marks.
    mutating func writerStep() {
        if let marks = gateway.unposted {
            for (d, mark) in marks { gateway.pollers[d].committed = mark }
            gateway.unposted = nil
        } else if let batch = gateway.batch {
            journal.commit(batch)
            note("committed \(batch.map { "d\($0.device) \($0.kind)" })")
            var marks: [Int: (UInt16, UInt32)] = [:]
            for record in batch { if case let .device(boot, seq, _) = record.kind { marks[record.device] = (boot, seq) } }
            gateway.unposted = marks
            gateway.batch = nil
        } else if !gateway.ring.isEmpty {
            let count = min(ScheduledGateway.maximumBatch, gateway.ring.count)
            let batch = Array(gateway.ring.prefix(count))
            gateway.ring.removeFirst(count)
            gateway.batch = batch
            if mutation == .marksPostedBeforeCommit {
                for record in batch { if case let .device(boot, seq, _) = record.kind { gateway.pollers[record.device].committed = (boot, seq) } }
            }
        }
    }

    // MARK: Publisher

    /// One iteration of `EventPublisher.run`: journal the refused and PUBACKed events, then hand over journal events while the
    /// in-flight window has room.
    mutating func publisherStep() {
        journal.mark(gateway.refused.map { ($0, .refused) })
        gateway.refused.removeAll()
        // `Journal.markPublishedUnlessBusy`: while the writer is between taking a batch and committing it (holding the
        // journal), the PUBACKed seqs wait for a later round; a crash meanwhile has them sent again, with the same ids.
        if gateway.batch == nil {
            if mutation != .pubacksNeverMarked {
                journal.mark(gateway.acknowledged.map { ($0, .published) }, outOfOrderDropped: mutation == .outOfOrderMarksDropped)
            }
            gateway.acknowledged.removeAll()
        }
        guard gateway.machine.isConnected else { return }
        while gateway.mayReadBatch {
            let rows = journal.unpublished(after: gateway.cursor, limit: min(gateway.machine.allowance, 500))
            var sent = 0
            for row in rows {
                guard gateway.machine.maySend(journalSeq: row.jseq) else { return }
                let publication = Publication(mid: gateway.client.newMid(), jseq: row.jseq, device: row.device, kind: row.kind)
                gateway.machine.published(mid: publication.mid, journalSeq: row.jseq)
                gateway.client.enqueue(publication)
                if broker.connected { broker.inbound.append(publication) }
                gateway.cursor = row.jseq
                sent += 1
            }
            if sent == 0 { return }
        }
    }

    /// libmosquitto connects (when the gateway wants a connection): CONNACK, then the resend of its queue.
    mutating func connect() {
        guard !broker.connected, gateway.machine.connection == .connecting else { return }
        if broker.refusingConnections {
            _ = gateway.machine.connackReceived(code: 5)
            _ = gateway.machine.disconnected(rc: 7)
            return
        }
        broker.connected = true
        _ = gateway.machine.connackReceived(code: 0)
        broker.inbound += gateway.client.queue
    }

    mutating func brokerProcess() {
        for delivery in broker.processOne() {
            note("delivered \(delivery.id) \(delivery.kind)")
            checkDelivery(delivery)
        }
    }

    /// `MQTTPublisher.pubackReceived` and `EventPublisher.pubackArrived` / `refusalArrived`.
    mutating func receivePuback() {
        guard broker.connected, !broker.pubacks.isEmpty else { return }
        let (mid, reason) = broker.pubacks.removeFirst()
        gateway.client.remove(mid: mid)
        switch gateway.machine.acknowledged(mid: mid, reasonCode: reason) {
        case let .markPublished(jseq): gateway.acknowledged.append(jseq)
        case let .rejected(jseq, _): if let jseq { gateway.refused.append(jseq) }  // journalled as refused, skipped
        case .stateAcknowledged, .unknown: break
        }
    }

    /// The process dies and systemd starts it again: only the journal and the devices remember anything.
    mutating func crash() {
        let lost = "lost: ring \(gateway.ring.count), batch \(gateway.batch?.count ?? 0), marks \(gateway.unposted != nil)"
        note(lost)
        broker.dropConnection()
        for d in devices.indices {
            devices[d].lastReadByGateway = -1
            // A loss of an earlier boot whose report had not been committed is as unknowable now as the device's
            // own forgotten events: nothing left on the device or in the journal shows it. A loss of the current
            // boot is not: the restarted reader starts from the journal's cursor and finds it again.
            let device = devices[d]
            for key in device.overwrittenUnread.union(releasedUnread[d]) where key >> 32 != UInt64(device.boot) {
                let seq = UInt32(key & 0xFFFF_FFFF), lostBoot = UInt16(key >> 32)
                let reported = journal.rows.contains {
                    if $0.device == d, case let .lost(boot, range) = $0.kind { return boot == lostBoot && range.contains(seq) }
                    return false
                }
                if !reported { devices[d].forgotten.insert(key) }
            }
        }
        gateway = ScheduledGateway(devices: devices.count, alwaysReadFull: alwaysReadFull, maxInflight: maxInflight)
        // `BusPoller.resumeFromJournal`: each reader starts where the journal's device cursor stands.
        for (d, cursor) in journal.cursors where mutation != .readersIgnoreTheJournal {
            gateway.pollers[d].fifo.resume(boot: cursor.boot, through: cursor.seq)
            gateway.pollers[d].committed = cursor
        }
    }

    // MARK: Invariants

    /// No ack before commit (SPEC 5.1): every seq an ack released is journalled, unless the ack reached a device
    /// that restarted after the read (then it must be reported lost).
    mutating func checkRelease(_ d: Int, _ released: ClosedRange<UInt32>, intendedBoot: UInt16?) {
        let boot = devices[d].boot
        for seq in released where !journal.isCommitted(device: d, boot: boot, seq: seq) {
            if intendedBoot != boot {
                releasedUnread[d].insert(SimulatedDevice.key(boot, seq))
                devices[d].lastOverwrite = clock
            } else {
                violated("no ack before commit: device \(d) acknowledged up to \(released.upperBound), releasing seq \(seq) of boot \(boot), which the journal does not hold")
                return
            }
        }
    }

    /// Loss is reported only for events the device no longer holds (finding 5: a window gap is not loss).
    mutating func checkLossReport(_ d: Int, boot: UInt16, _ lost: ClosedRange<UInt32>) {
        guard boot == devices[d].boot else { return }
        let log = devices[d].log
        let first = max(log.ack + 1, max(log.tail, 1))
        guard log.head >= first else { return }
        let held = first...log.head
        guard held.overlaps(lost) else { return }
        violated("false loss: device \(d) reported seq \(lost.lowerBound)...\(lost.upperBound) of boot \(boot) lost, but it still holds \(held.lowerBound)...\(held.upperBound) unacknowledged (tail_seq \(log.tail), ack_seq \(log.ack))")
    }

    /// One id per event, per-device order, one report per loss: checked on each delivery to the subscriber.
    mutating func checkDelivery(_ delivery: Publication) {
        guard let row = journal.rows.dropFirst(Int(delivery.jseq - 1)).first, row.kind == delivery.kind,
              row.device == delivery.device else {
            return violated("delivered \(delivery.id) does not match journal row \(delivery.jseq)")
        }
        let first = deliveredIDs.insert(delivery.id).inserted
        switch delivery.kind {
        case let .device(boot, seq, _):
            guard first, let position = devices[delivery.device].position[SimulatedDevice.key(boot, seq)] else { return }
            if position < lastDelivered[delivery.device] {
                let earlier = devices[delivery.device].history[lastDelivered[delivery.device]]
                violated("per-device order: device \(delivery.device) delivered \(boot).\(seq) after \(earlier >> 32).\(earlier & 0xFFFF_FFFF), recorded later")
            }
            lastDelivered[delivery.device] = position
        case let .lost(boot, range):
            guard first else { return }
            if let other = lossReports[delivery.device].first(where: { $0.boot == boot && $0.range.overlaps(range) }) {
                violated("one id per event: device \(delivery.device) loss \(boot).\(range) delivered as \(delivery.id) after \(other.range) as \(other.id)")
            }
            lossReports[delivery.device].append((boot, range, delivery.id))
        case .online, .offline:
            break
        }
    }

    /// At the end: every recorded event reached the subscriber, or its loss was reported, or a restart forgot it
    /// before anyone could read it.
    mutating func checkEveryEventAccountedFor() {
        for (d, device) in devices.enumerated() {
            for key in device.history {
                let boot = UInt16(key >> 32), seq = UInt32(key & 0xFFFF_FFFF)
                if deliveredIDs.contains("d\(d)/\(boot)/\(seq)") || device.forgotten.contains(key) { continue }
                if case let type? = device.types[key], type == broker.deniedType { continue }
                if lossReports[d].contains(where: { $0.boot == boot && $0.range.contains(seq) }) {
                    if device.overwrittenUnread.contains(key) || releasedUnread[d].contains(key) { continue }
                }
                let fate = device.overwrittenUnread.contains(key) ? "overwritten unread"
                    : releasedUnread[d].contains(key) ? "released by an ack that reached the restarted device" : "held or acknowledged"
                return violated("loss always reported: device \(d) event \(boot).\(seq) (\(fate)) was neither delivered nor reported lost")
            }
        }
    }
}
