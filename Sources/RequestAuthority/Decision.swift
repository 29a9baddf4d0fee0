/// What the authority decided about one request, as a value the caller acts on, journals and replies with.
public enum Decision: Sendable, Hashable {
    /// Every rule checked so far holds; `issuer` is who the request counts as (`unsigned` when signatures are off).
    case accepted(issuer: String)
    case rejected(Rejection)
    /// The deadline (`time` + TTL) has passed: never executed late.
    case expired

    public var isAccepted: Bool {
        if case .accepted = self { true } else { false }
    }
}

/// Why a request was refused: the `reason` of a `rejected` reply and of the `command.rejected` event (SPEC 4.1).
public enum Rejection: String, Error, Sendable, Hashable, CaseIterable {
    /// Rule 1: a retained request is stale by nature.
    case retained
    /// Rule 2: not JSON of the request's shape, or an `id` outside `[A-Za-z0-9._:-]{1,64}`.
    case malformed
    /// Rule 3: unknown issuer, missing or wrong signature.
    case unauthenticated
    /// Rule 4: the issuer's `allow` rules do not cover this device and command.
    case notPermitted = "not_permitted"
    /// Rule 5: the device, the command or an argument is unknown to the configuration and the device's profile.
    case unknownDevice = "unknown_device"
    case unknownCommand = "unknown_command"
    case badArgument = "bad_argument"
    /// Rule 6: `time` is more than 5 s ahead of the gateway's clock.
    case clock
    /// Rule 7: the issuer used this `id` before for another device, command or arguments.
    case idReused = "id_reused"
}
