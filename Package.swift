// swift-tools-version: 6.1
import PackageDescription

let package = Package(
    name: "accessgw",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "accessgw", targets: ["accessgw"]),
        // For the fuzz targets in Tests/Fuzz (a package of their own, built with libFuzzer by scripts/fuzz): the
        // modules whose parsers face input, so each target calls the same entry point the daemon uses.
        .library(name: "AccessGatewayModules", targets: [
            "AccessModel", "DeviceProfiles", "ModbusTransport", "Simulators", "Gateway", "RequestAuthority", "Journal", "Collector",
        ]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
        .package(url: "https://github.com/apple/swift-log", from: "1.16.0"),  // LogHandler.log(event:)
        .package(url: "https://github.com/apple/swift-atomics", from: "1.2.0"),
        .package(url: "https://github.com/apple/swift-metrics", from: "2.5.0"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle", from: "2.6.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus", from: "2.0.0"),
        .package(url: "https://github.com/jpsim/Yams", from: "6.0.0"),
        .package(url: "https://github.com/vapor/postgres-nio", from: "1.33.0"),
    ],
    targets: [
        // C libraries, one system-library target each; exactly one Swift target imports each.
        .systemLibrary(name: "CModbus", pkgConfig: "libmodbus", providers: [.apt(["libmodbus-dev"])]),
        .systemLibrary(name: "CMosquitto", pkgConfig: "libmosquitto", providers: [.apt(["libmosquitto-dev"])]),
        .systemLibrary(name: "CSQLite", pkgConfig: "sqlite3", providers: [.apt(["libsqlite3-dev"])]),
        .systemLibrary(name: "CCrypto", pkgConfig: "libcrypto", providers: [.apt(["libssl-dev"])]),
        // The C library's <sys/timex.h> (adjtimex), which Glibc's module does not export.
        .systemLibrary(name: "CTimex"),

        // The event model: raw records, normalised events, CloudEvents JSON, text codecs.
        .target(name: "AccessModel"),
        // Device profiles (YAML) and the pure decoding of registers into events.
        .target(name: "DeviceProfiles", dependencies: ["AccessModel", .product(name: "Yams", package: "Yams")]),
        // Modbus TCP and RTU client over libmodbus.
        .target(name: "ModbusTransport", dependencies: ["CModbus", "AccessModel"]),
        // The lock-free single-producer single-consumer ring between a bus poller and the journal writer.
        .target(name: "EventRing", dependencies: [.product(name: "Atomics", package: "swift-atomics")]),
        // The SQLite journal: every event durable before it is acknowledged to its device.
        .target(name: "Journal", dependencies: ["CSQLite", "AccessModel"]),
        // Signed requests (commands, replay): Ed25519 through libcrypto, issuers, allow rules, decisions as values.
        .target(name: "RequestAuthority", dependencies: ["CCrypto", "AccessModel"]),
        // MQTT publishing over libmosquitto: QoS 1, PUBACK tracking, retained state, Last Will.
        .target(name: "MQTTPublisher", dependencies: [
            "CMosquitto", "AccessModel", .product(name: "Logging", package: "swift-log"),
        ]),
        // Device simulators serving the register maps over Modbus TCP and RTU.
        .target(name: "Simulators", dependencies: [
            "AccessModel", "DeviceProfiles", .product(name: "Logging", package: "swift-log"),
        ]),
        // Bus pollers: the scheduler, the event FIFO reader and device online/offline state machines.
        .target(name: "BusPolling", dependencies: [
            "AccessModel", "CTimex", "DeviceProfiles", "ModbusTransport", "EventRing",
            .product(name: "Atomics", package: "swift-atomics"),
            .product(name: "Logging", package: "swift-log"),
            .product(name: "Metrics", package: "swift-metrics"),
        ]),
        // The daemon wiring: configuration, services, metrics, systemd integration.
        .target(name: "Gateway", dependencies: [
            "AccessModel", "DeviceProfiles", "ModbusTransport", "BusPolling", "EventRing", "Journal",
            "MQTTPublisher", "Simulators", "RequestAuthority",
            .product(name: "Atomics", package: "swift-atomics"),
            .product(name: "Logging", package: "swift-log"),
            .product(name: "CoreMetrics", package: "swift-metrics"),
            .product(name: "Metrics", package: "swift-metrics"),
            .product(name: "Prometheus", package: "swift-prometheus"),
            .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            .product(name: "UnixSignals", package: "swift-service-lifecycle"),
        ]),
        // The centre's collector (SPEC 4.4): MQTT 5 shared subscription → PostgreSQL, and the signed receipts back.
        .target(name: "Collector", dependencies: [
            "AccessModel", "MQTTPublisher", "RequestAuthority", "DeviceProfiles",
            .product(name: "PostgresNIO", package: "postgres-nio"),
            .product(name: "Logging", package: "swift-log"),
            .product(name: "Metrics", package: "swift-metrics"),
            .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            .product(name: "UnixSignals", package: "swift-service-lifecycle"),
        ]),
        // The benchmarks behind `accessgw bench` (SPEC section 8): end to end, RS-485 efficiency, scale.
        // Imports CMosquitto directly: its subscriber and raw-publish baseline are the reference the gateway's
        // publisher is measured against, so they must not go through the gateway's own wrapper.
        .target(name: "Bench", dependencies: [
            "Gateway", "Simulators", "BusPolling", "CMosquitto", "MQTTPublisher", "RequestAuthority", "AccessModel",
            .product(name: "Logging", package: "swift-log"),
        ]),
        // The thin command-line executable.
        .executableTarget(name: "accessgw", dependencies: [
            "AccessModel", "DeviceProfiles", "ModbusTransport", "Simulators", "Gateway", "Bench", "RequestAuthority", "MQTTPublisher",
            "Journal", "Collector",
            .product(name: "ArgumentParser", package: "swift-argument-parser"),
            .product(name: "Logging", package: "swift-log"),
            .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
        ]),

        // A C reference ring for the ring benchmark, compiled and run in the same benchmark.
        .target(name: "CReferenceRing", path: "Benchmarks/CReferenceRing"),
        .executableTarget(name: "ring-benchmark", dependencies: ["EventRing", "CReferenceRing", "AccessModel", "Journal", "DeviceProfiles"],
                          path: "Benchmarks/RingBenchmark"),

        .target(name: "TestSupport", dependencies: ["AccessModel", "Simulators"], path: "Tests/TestSupport"),
        // Seeded fault schedules: the pure state machines with an in-memory device log, journal and broker.
        .target(name: "FaultSchedules", dependencies: ["BusPolling", "DeviceProfiles", "MQTTPublisher", "Simulators"],
                path: "Tests/FaultSchedules"),
        .testTarget(name: "FaultScheduleTests", dependencies: ["FaultSchedules", "AccessModel"]),
        .testTarget(name: "AccessModelTests", dependencies: ["AccessModel", "Simulators"]),
        .testTarget(name: "DeviceProfilesTests", dependencies: ["DeviceProfiles", "AccessModel", "TestSupport"],
                    resources: [.copy("Golden")]),
        .testTarget(name: "SimulatorsTests", dependencies: ["Simulators", "ModbusTransport", "DeviceProfiles", "AccessModel", "TestSupport"],
                    resources: [.copy("Golden")]),
        .testTarget(name: "EventRingTests", dependencies: ["EventRing", .product(name: "Atomics", package: "swift-atomics")]),
        .testTarget(name: "JournalTests", dependencies: ["Journal", "AccessModel", "TestSupport"]),
        .testTarget(name: "MQTTPublisherTests", dependencies: [
            "MQTTPublisher", "AccessModel", "TestSupport", .product(name: "Logging", package: "swift-log"),
        ]),
        .testTarget(name: "BusPollingTests", dependencies: [
            "BusPolling", "Simulators", "DeviceProfiles", "TestSupport", "AccessModel", "EventRing", "ModbusTransport",
            .product(name: "Logging", package: "swift-log"),
        ]),
        .testTarget(name: "ModbusTransportTests", dependencies: ["AccessModel", "ModbusTransport", "Simulators", "TestSupport"]),
        .testTarget(name: "RequestAuthorityTests", dependencies: ["RequestAuthority", "AccessModel"]),
        .testTarget(name: "CollectorTests", dependencies: [
            "Collector", "TestSupport", "RequestAuthority", "MQTTPublisher", "AccessModel", "DeviceProfiles",
            .product(name: "Logging", package: "swift-log"),
        ], resources: [.copy("Golden")]),
        .testTarget(name: "GatewayTests", dependencies: [
            "Gateway", "Simulators", "TestSupport", "RequestAuthority", "CMosquitto", "AccessModel", "BusPolling", "MQTTPublisher",
            "DeviceProfiles", "EventRing", "Journal", "ModbusTransport", .product(name: "Logging", package: "swift-log"),
        ]),
    ],
    swiftLanguageModes: [.v6]
)
