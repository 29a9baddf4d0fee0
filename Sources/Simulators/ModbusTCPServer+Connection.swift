#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// One connection's request loop: MBAP header, PDU, faults, reply.
extension ModbusTCPServer {
    func serve(_ fd: Int32) {
        while true {
            let header: [UInt8]
            switch Socket.readExact(fd, count: 7) {
            case let .bytes(bytes): header = bytes
            case let .closed(partial):
                if partial > 0 { counters.update { $0.malformedFrames += 1 } }
                return
            }
            let protocolID = Int(header[2]) << 8 | Int(header[3])
            let length = Int(header[4]) << 8 | Int(header[5])
            let unit = header[6]
            guard protocolID == 0, (2...254).contains(length) else {
                counters.update { $0.malformedFrames += 1 }
                logger.debug("malformed MBAP header", metadata: ["protocol": "\(protocolID)", "length": "\(length)"])
                return
            }
            guard case let .bytes(pdu) = Socket.readExact(fd, count: length - 1) else {
                counters.update { $0.malformedFrames += 1 }
                return
            }
            let reply: [UInt8]
            var replyUnit = unit
            var trailing = 0
            var padding = 0
            if let device = device(for: unit) {
                let faults = device.faults
                replyUnit = faults.replyUnit ?? unit
                trailing = faults.trailingBytes
                padding = faults.paddedReplyBytes
                switch device.decideFault() {
                case .dropConnection:
                    counters.update { $0.dropped += 1 }
                    return
                case .noReply:
                    counters.update { $0.dropped += 1 }
                    continue
                case let .exception(code, delay):
                    PreciseClock.sleep(milliseconds: delay)
                    reply = ModbusPDU.exception(pdu[0], ModbusException(code: code))
                case let .answer(delay, _):
                    PreciseClock.sleep(milliseconds: delay)
                    reply = ModbusPDU.reply(to: pdu, device: device)
                }
            } else {
                reply = ModbusPDU.exception(pdu[0], .gatewayTargetFailed("no unit \(unit)"))
            }
            counters.update { $0.requests += 1 }
            let replyLength = reply.count + padding + 1
            var frame = Array(header[0..<4])
            frame.reserveCapacity(7 + reply.count)
            frame += [UInt8(replyLength >> 8), UInt8(replyLength & 0xFF), replyUnit]
            frame += reply
            frame += [UInt8](repeating: 0xA5, count: padding + trailing)
            guard Socket.writeAll(fd, frame) else { return }
        }
    }
}
