import DeviceProfiles

/// The event FIFO reader of one device (SPEC 3.4 and 5.1) as a pure state machine: it decides what to read,
/// which records of a window are new, what was lost, and when `ack_seq` may be written. No I/O.
///
/// The cycle is read → emit → wait for the journal commit → write ack → read again; while a device waits for
/// its commit the bus serves the other devices.
public struct EventLogStateMachine: Sendable {
    /// What a poll of the log reads.
    public enum Read: Sendable, Equatable {
        /// The header registers alone: enough to see whether anything is unread (cheap on RTU).
        case header
        /// Header and window in one request.
        case full
    }

    /// The next step at this device's turn.
    public enum Step: Sendable, Equatable {
        case read(Read)
        /// Everything emitted up to this seq is committed: write it to `ack_seq`.
        case writeAck(UInt32)
        /// Emitted records are not committed yet; serve other devices meanwhile.
        case waitForCommit
    }

    /// What a read of the log means.
    public struct Outcome: Sendable, Equatable {
        /// Window indices of the records to put on the ring, in order.
        public var emit: Range<Int> = 0..<0
        /// Seqs the device overwrote before the gateway read them.
        public var lost: ClosedRange<UInt32>?
        /// The device's seq counter restarted (new boot_id); no loss is implied.
        public var bootChanged = false
        /// Only the header was read and there is something to read: read the window now.
        public var readWindowNow = false
        /// Records that did not fit the FIFO's rules; they and those after them are read again later.
        public var problems: [String] = []
        /// The header showed a boot_id other than ours for the first time: nothing was used, and the next
        /// regular read confirms the restart or shows it was a garbled register.
        public var confirmingBoot = false
        /// The header itself is garbage (a field out of range): nothing of this read was used, and the read
        /// counts as a failed poll (SPEC 5.5).
        public var badHeader: String?
    }

    public let windowRecords: Int
    /// Over TCP a full read costs no more than a header read, so the header is never read alone.
    public let alwaysReadFull: Bool
    public private(set) var boot: UInt16?
    /// The highest seq of `boot` put on the ring.
    public private(set) var lastEmitted: UInt32 = 0
    /// The highest seq of `boot` accounted for: put on the ring (a record or a reported loss) by this reader, or held
    /// or reported lost by the journal it resumed from. Never reported lost (again): a resynchronisation after a
    /// refused ack goes back to the device's `ack_seq` for the records it still holds, not for losses already told.
    public private(set) var accountedThrough: UInt32 = 0
    /// Emitted but not yet acknowledged to the device.
    public private(set) var pendingAck: UInt32?
    /// Whether the last header said more is unread than was emitted.
    public private(set) var moreUnread = false
    /// Acks the device refused in a row; the poller backs off by this count.
    public private(set) var refusedAcks = 0
    /// A refused ack left the device's `ack_seq` behind ours: the next read starts again from the device's own.
    private var resynchronise = false
    /// A boot_id differing from ours, seen once: it becomes the boot only when the next read shows it again,
    /// so a flapping or garbled boot_id register never passes for a restart.
    public private(set) var candidateBoot: UInt16?
    /// The boots this reader has been on, newest last (a few): a change back to one of them is no fresh log.
    private var formerBoots: [UInt16] = []
    /// Started from the journal's device cursor and not yet confirmed by a read of that boot: the first such read
    /// acknowledges what the journal holds beyond the device's `ack_seq` (a crash took the ack).
    private var resumed = false

    public init(windowRecords: Int, alwaysReadFull: Bool) {
        self.windowRecords = windowRecords
        self.alwaysReadFull = alwaysReadFull
    }

    /// Starts a restarted reader where the journal stands with this device (its device cursor): `boot`, and the
    /// highest seq of it the journal accounts for, stored or reported lost. So what is derived from the device's log
    /// depends on durable state only: a loss already journalled is not reported again (under a new id), and records
    /// the device's `ack_seq` passed after that seq, without the journal holding them, are reported lost although
    /// the report made before a crash was never committed. A device showing another boot is confirmed by a second
    /// read, then read as a restarted log (an `ack_seq` on it released records unread). Call before the first read.
    public mutating func resume(boot: UInt16, through seq: UInt32) {
        guard self.boot == nil else { return }
        self.boot = boot
        lastEmitted = seq
        accountedThrough = seq
        resumed = true
    }

    /// The step for this turn, given the journal's highest committed seq for this device and boot.
    public func nextStep(committed: (boot: UInt16, seq: UInt32)?) -> Step {
        if let target = pendingAck {
            guard let committed, committed.boot == boot, committed.seq >= target else { return .waitForCommit }
            return .writeAck(target)
        }
        return .read(alwaysReadFull || moreUnread ? .full : .header)
    }

    /// Whether the device has work beyond its next regular poll (a backlog to drain or an ack to write).
    public var hasBacklog: Bool { pendingAck != nil || moreUnread }

    public mutating func ackWritten(_ seq: UInt32) {
        if pendingAck == seq { pendingAck = nil }
        refusedAcks = 0
    }

    /// The device answered the ack of `seq` but a later read shows it did not apply it to its log (its `ack_seq` or
    /// its window still behind it): the ack is due again, to be written another way. Nothing of that read is used.
    public mutating func ackNotApplied(_ seq: UInt32) {
        guard seq <= lastEmitted else { return }
        pendingAck = max(pendingAck ?? 0, seq)
    }

    /// The device refused the ack (exception 03). It may have restarted, or a converter garbled the write: either
    /// way the next read starts again from the device's own `ack_seq`, re-emitting what it still holds (the
    /// journal recognises records it already has by boot and seq), so acking never stops. The poller backs off
    /// before that read (`ackRetryDelay`).
    public mutating func ackRejected() {
        pendingAck = nil
        moreUnread = true
        resynchronise = true
        refusedAcks += 1
    }

    /// How long to wait before reading again after `refusedAcks` refusals in a row: the poll interval,
    /// doubling up to 30 s.
    public func ackRetryDelay(pollMillis: Int64) -> Int64 {
        guard refusedAcks > 0 else { return 0 }
        return min(DeviceHealthStateMachine.maximumBackoffMillis, max(pollMillis, 1) << Int64(min(refusedAcks - 1, 16)))
    }

    /// The first field of `header` that no device following SPEC 3.4 can hold, described for the log; nil when sane.
    public func implausibility(of header: EventLogHeader) -> String? {
        if Int(header.windowCount) > windowRecords {
            return "window_count \(header.windowCount) exceeds the \(windowRecords) records of the window"
        }
        if header.ackSeq > header.headSeq {
            return "ack_seq \(header.ackSeq) is above head_seq \(header.headSeq)"
        }
        // SPEC 3.4: an empty log shows tail_seq 0 or 1 with head_seq 0; a device that frees what was acknowledged
        // shows head_seq + 1 once it holds nothing, which only an ack of everything can bring about.
        if header.headSeq == 0, header.tailSeq > 1 || header.windowCount != 0 {
            return "head_seq 0 (empty log) with tail_seq \(header.tailSeq) and window_count \(header.windowCount)"
        }
        if header.headSeq > 0, header.tailSeq == header.headSeq &+ 1, header.ackSeq < header.headSeq {
            return "tail_seq \(header.tailSeq) (nothing held) with ack_seq \(header.ackSeq) below head_seq \(header.headSeq)"
        }
        if header.headSeq > 0, header.tailSeq == 0 || header.tailSeq > header.headSeq &+ 1 {
            return "tail_seq \(header.tailSeq) outside 1...head_seq + 1 (\(header.headSeq &+ 1))"
        }
        let held = header.headSeq == 0 ? 0 : header.headSeq - max(header.ackSeq, header.tailSeq - 1)
        if UInt32(header.windowCount) > held {
            return "window_count \(header.windowCount) exceeds the \(held) unread event(s) the log holds"
        }
        return nil
    }

    /// Interprets a header, and the seqs of the window's records when the window was read.
    public mutating func logRead(_ header: EventLogHeader, windowSeqs: [UInt32]?) -> Outcome {
        var outcome = Outcome()
        if let problem = implausibility(of: header) {
            outcome.badHeader = problem
            return outcome
        }
        if let boot, boot != header.bootID, candidateBoot != header.bootID {
            // Seen once: confirm with the next read before believing the device restarted.
            candidateBoot = header.bootID
            outcome.confirmingBoot = true
            return outcome
        }
        candidateBoot = nil
        defer { accountedThrough = max(accountedThrough, lastEmitted) }
        let firstContact = boot == nil
        if boot == nil {
            boot = header.bootID
            lastEmitted = header.ackSeq
        } else if let previous = boot, previous != header.bootID {
            outcome.bootChanged = true
            let returning = formerBoots.contains(header.bootID)
            formerBoots = Array((formerBoots + [previous]).suffix(8))
            boot = header.bootID
            lastEmitted = header.ackSeq
            accountedThrough = 0
            pendingAck = nil
            // A new log starts unacknowledged; an ack equal to ours means ours reached the new boot and released
            // its first events unread: loss the gateway could not prevent, reported rather than hidden.
            // A boot this reader was on before is no fresh log (a garbled boot_id register): not reported again.
            // Any ack_seq on a new log is one of ours that arrived after the restart (one gateway drains a log), also
            // one whose write timed out, possibly raised to tail_seq - 1 by the device.
            if header.ackSeq > 0, !returning {
                outcome.lost = 1...header.ackSeq
                outcome.problems.append("the device restarted before an ack_seq arrived, which released seq 1...\(header.ackSeq) of its new log unread")
            }
        } else if header.headSeq < lastEmitted {
            outcome.problems.append("head_seq went back from \(lastEmitted) to \(header.headSeq) without a new boot_id; resynchronised")
            lastEmitted = header.ackSeq
            accountedThrough = 0
            pendingAck = nil
        } else if resynchronise {
            // Back to the device's ack_seq when it is behind ours; one ahead of ours is loss (below).
            lastEmitted = min(lastEmitted, header.ackSeq)
        }
        resynchronise = false
        if resumed, !outcome.bootChanged, header.ackSeq < lastEmitted, pendingAck == nil {
            // The journal holds these (or reported them lost) and the ack never reached the device: write it.
            pendingAck = lastEmitted
        }
        resumed = false
        if header.ackSeq > lastEmitted {
            // Within a boot the device's ack_seq passes what this gateway emitted only when the device raised an
            // ack to tail_seq - 1 because it overwrote events nobody read (one gateway drains a log, SPEC 3.4): loss,
            // reported, even though that ack cleared the overwrite flag.
            let from = max(lastEmitted, accountedThrough) + 1
            if !firstContact, !outcome.bootChanged, from <= header.ackSeq { outcome.lost = from...header.ackSeq }
            lastEmitted = header.ackSeq
        }
        if let target = pendingAck, target <= header.ackSeq { pendingAck = nil }  // the device already has it

        guard let windowSeqs else {
            moreUnread = header.headSeq > lastEmitted
            outcome.readWindowNow = moreUnread && pendingAck == nil
            return outcome
        }
        let available = min(Int(header.windowCount), windowSeqs.count)
        var first: Int?
        var last = lastEmitted
        for index in 0..<available {
            let seq = windowSeqs[index]
            if seq <= last && first == nil { continue }  // already emitted, awaiting its ack
            if seq > header.headSeq || seq == 0 {
                outcome.problems.append("record \(index) has seq \(seq) outside the log (head_seq \(header.headSeq))")
                break
            }
            if first == nil {
                if seq > last + 1 {
                    // Loss only of what the device no longer holds, below its tail_seq (the overwrite flag may
                    // stem from earlier overwrites). A record at or above tail_seq that the window skipped is still
                    // there: read again (found by the fault schedules: flag set, tail 7, window 8, 9).
                    if header.tailSeq > last + 1 {
                        let from = max(last, accountedThrough) + 1
                        if from < header.tailSeq { outcome.lost = (outcome.lost?.lowerBound ?? from)...(header.tailSeq - 1) }
                        last = header.tailSeq - 1
                        lastEmitted = last
                    }
                    if seq > last + 1 {
                        outcome.problems.append("record \(index) has seq \(seq), expected \(last + 1) (tail_seq \(header.tailSeq) shows the device still holds it)")
                        break
                    }
                }
                first = index
            } else if seq != last + 1 {
                outcome.problems.append("record \(index) has seq \(seq), expected \(last + 1)")
                break
            }
            last = seq
        }
        if let first {
            outcome.emit = first..<(first + Int(last - (windowSeqs[first])) + 1)
            lastEmitted = last
            pendingAck = last
        }
        moreUnread = header.headSeq > lastEmitted
        return outcome
    }
}
