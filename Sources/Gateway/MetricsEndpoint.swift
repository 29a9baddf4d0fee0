import CoreMetrics
import Metrics
import Prometheus

/// The Prometheus registry behind swift-metrics: every `Counter`, `Gauge` and `Timer` of the gateway lands here.
public struct MetricsEndpoint: Sendable {
    public let registry: PrometheusCollectorRegistry

    /// Bootstraps swift-metrics with a Prometheus factory (once per process).
    public static func bootstrap() -> MetricsEndpoint {
        let registry = PrometheusCollectorRegistry()
        var factory = PrometheusMetricsFactory(registry: registry)
        factory.defaultDurationHistogramBuckets = [.milliseconds(1), .milliseconds(2), .milliseconds(5), .milliseconds(10),
                                                .milliseconds(20), .milliseconds(50), .milliseconds(100), .milliseconds(200),
                                                .milliseconds(500), .seconds(1)]
        MetricsSystem.bootstrap(factory)
        return MetricsEndpoint(registry: registry)
    }

    /// The Prometheus text exposition of every series, with help texts, build information and process series.
    public func exposition() -> [UInt8] {
        let series = MetricsCatalogue.withHelp(String(decoding: registry.emitToBuffer(), as: UTF8.self))
        return Array((MetricsCatalogue.buildInfo + series + MetricsCatalogue.processMetrics).utf8)
    }
}
