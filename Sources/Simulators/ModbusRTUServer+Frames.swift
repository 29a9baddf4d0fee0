/// What the RTU server does with each assembled frame: dispatch by unit, apply faults, pace and reply.
extension ModbusRTUServer {
    func handle(_ output: RTUFrameAssembler.Output, port: SerialPort, frameStart: UInt64) {
        let frame: [UInt8]
        switch output {
        case .badCRC:
            counters.update { $0.crcErrors += 1 }
            return
        case .malformed:
            counters.update { $0.malformedFrames += 1 }
            return
        case let .frame(bytes): frame = bytes
        }
        let unit = frame[0]
        let pdu = Array(frame[1..<(frame.count - 2)])
        if unit == 0 {
            for device in devices.values { ModbusPDU.executeBroadcast(pdu, device: device) }
            counters.update { $0.requests += 1 }
            return
        }
        guard let device = devices[unit] else {
            counters.update { $0.otherUnits += 1 }
            return
        }
        let reply: [UInt8]
        let delay: Int
        var corrupt = false
        switch device.decideFault(function: pdu.first, address: pdu.count >= 3 ? UInt16(pdu[1]) << 8 | UInt16(pdu[2]) : nil) {
        case .noReply, .dropConnection:
            counters.update { $0.dropped += 1 }
            return
        case let .exception(code, delayMilliseconds):
            reply = ModbusPDU.exception(pdu[0], ModbusException(code: code))
            delay = delayMilliseconds
        case let .answer(delayMilliseconds, corruptCRC):
            reply = ModbusPDU.reply(to: pdu, device: device)
            delay = delayMilliseconds
            corrupt = corruptCRC
        }
        var bytes = CRC16.appending(to: [unit] + reply)
        if corrupt { bytes[bytes.count - 1] ^= 0xFF }
        bytes += [UInt8](repeating: 0xA5, count: device.faults.trailingBytes)
        counters.update { [replyCount = bytes.count] in
            $0.requests += 1
            $0.requestBytes += frame.count
            $0.replyBytes += replyCount
        }
        let latency = UInt64(delay) * 1_000_000
        if settings.pace {
            let start = frameStart + settings.timing.frameNanoseconds(frame.count) + settings.timing.frameSilenceNanoseconds
            PreciseClock.sleep(until: start + latency + settings.timing.frameNanoseconds(bytes.count))
        } else if latency > 0 {
            PreciseClock.sleep(until: PreciseClock.now + latency)
        }
        if !port.write(bytes) { logger.warning("serial line \(path): write failed") }
        let written = PreciseClock.now
        let requestEnd = settings.pace ? frameStart + settings.timing.frameNanoseconds(frame.count) : frameStart
        trace.record(LineTraceEntry(requestStart: frameStart, requestEnd: requestEnd,
                                    replyStart: settings.pace ? written - settings.timing.frameNanoseconds(bytes.count) : written,
                                    replyEnd: written, unit: unit, function: pdu.first ?? 0,
                                    address: pdu.count >= 3 ? UInt16(pdu[1]) << 8 | UInt16(pdu[2]) : 0, requestBytes: frame.count,
                                    replyBytes: bytes.count))
    }
}
