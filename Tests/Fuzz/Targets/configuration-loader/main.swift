import FuzzSupport
import Gateway

/// A gateway configuration file as `check`, `run` and a reload read it (YAML, every section, durations, sizes,
/// addresses, the vendor profiles it names).
fuzz { input in
    _ = try? GatewayConfiguration.parse(input.text, file: "fuzz.yaml")
}
