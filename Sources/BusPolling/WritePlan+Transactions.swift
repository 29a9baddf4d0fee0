import DeviceProfiles
import ModbusTransport

extension WritePlan {
    init(_ command: MapCommand) {
        self.init(value: command.value, rest: command.rest, pulseMillis: command.pulseMilliseconds)
    }

    /// Makes `step`'s one transaction on `connection` (a write with the command's function, or a read-back of its
    /// coil or register) and says what it gave, for `next(after:)`; nil for a step that is no transaction.
    static func transact(_ step: Step, _ command: MapCommand, unit: UInt8, on connection: ModbusConnection) -> Result? {
        let address = command.address
        switch step {
        case .write(let value):
            do {
                switch command.function {
                case 5: try connection.writeCoil(unit: unit, address: address, on: value != 0)
                case 15: try connection.writeCoils(unit: unit, address: address, values: [value != 0])
                case 6: try connection.writeRegister(unit: unit, address: address, value: value)
                default: try connection.writeRegisters(unit: unit, address: address, values: [value])
                }
                return .written
            } catch {
                if case .exception = error.code { return .exception("\(error)") }
                return .noReply("\(error)")
            }
        case .readBack:
            var word: UInt16 = 0
            var bit: UInt8 = 0
            do {
                if command.table == .coils {
                    try connection.readBits(unit: unit, address: address, count: 1, discreteInputs: false, into: &bit)
                    return .readBack(UInt16(bit))
                }
                try connection.readRegisters(unit: unit, address: address, count: 1, input: false, into: &word)
                return .readBack(word)
            } catch {
                return .readBack(nil)
            }
        case .pulseThenRestore, .done:
            return nil
        }
    }
}
