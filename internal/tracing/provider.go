package tracing

import (
	"context"
	"fmt"
	"strings"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
)

// Environment variables of OpenTelemetry's SDK that decide whether spans
// are exported.
const (
	EnvEndpoint       = "OTEL_EXPORTER_OTLP_ENDPOINT"
	EnvTracesEndpoint = "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"
	EnvProtocol       = "OTEL_EXPORTER_OTLP_PROTOCOL"
	EnvTracesProtocol = "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL"
	EnvDisabled       = "OTEL_SDK_DISABLED"
)

// FromEnv returns the TracerProvider the environment asks for: with
// OTEL_EXPORTER_OTLP_ENDPOINT (or _TRACES_ENDPOINT) set, one that exports
// every span over OTLP/HTTP in batches, configured by the SDK's usual
// variables (OTEL_EXPORTER_OTLP_HEADERS, OTEL_TRACES_SAMPLER, OTEL_SERVICE_NAME,
// OTEL_RESOURCE_ATTRIBUTES …); otherwise nil, which turns tracing off.
// shutdown flushes what is buffered and is never nil.
func FromEnv(ctx context.Context, getenv func(string) string, version string) (tp trace.TracerProvider, shutdown func(context.Context) error, err error) {
	none := func(context.Context) error { return nil }
	if strings.EqualFold(getenv(EnvDisabled), "true") || getenv(EnvEndpoint) == "" && getenv(EnvTracesEndpoint) == "" {
		return nil, none, nil
	}
	for _, name := range []string{EnvTracesProtocol, EnvProtocol} {
		if p := getenv(name); p != "" {
			if p != "http/protobuf" {
				return nil, none, fmt.Errorf("%s=%s: licensebus exports OTLP over HTTP only (http/protobuf)", name, p)
			}
			break
		}
	}
	exp, err := otlptracehttp.New(ctx)
	if err != nil {
		return nil, none, fmt.Errorf("OTLP exporter: %w", err)
	}
	res, err := resource.New(ctx,
		resource.WithAttributes(attribute.String("service.name", "licensebus"), attribute.String("service.version", version)),
		resource.WithFromEnv(), resource.WithHost(), resource.WithProcessPID())
	if err != nil {
		return nil, none, fmt.Errorf("trace resource: %w", err)
	}
	sdk := sdktrace.NewTracerProvider(sdktrace.WithBatcher(exp), sdktrace.WithResource(res))
	return sdk, sdk.Shutdown, nil
}
