package metrics_test

import (
	"strings"
	"testing"
	"time"

	"github.com/licensebus/licensebus/events"
	"github.com/licensebus/licensebus/internal/metrics"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

func msg(t *testing.T, typ events.Type, d events.Data, id, corr string, at time.Time) *events.Message {
	t.Helper()
	m, err := events.New(typ, d, events.Meta{ID: id, Source: "/test", CorrelationID: corr, Time: at})
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// Ensure a command is counted once, with its final outcome and its
// latency from its CloudEvent time to its outcome's, when the fold reads
// the first terminal event of its correlation; other events and other
// processes' commands count nothing.
func TestOutcomes(t *testing.T) {
	m := metrics.New(metrics.Config{})
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	const lid = "123e4567-e89b-12d3-a456-426614174000"
	cmd := msg(t, events.ActivateLicenseType, &events.ActivateLicense{InstallCode: "IC-1", LicenseID: lid}, "c1", "", t0)
	m.Command(cmd)
	m.Command(cmd) // a redelivery: still one
	requested := msg(t, events.ActivationRequestedType, &events.ActivationRequested{InstallCode: "IC-1", LicenseID: lid, CustomerID: lid}, "e1", "c1", t0.Add(time.Millisecond))
	m.Fold(1, requested) // not terminal
	rejected := msg(t, events.RejectedType, &events.Rejected{Reason: events.ReasonAlreadyActive, Message: "x", Aggregate: "license", ID: lid}, "e2", "c1", t0.Add(30*time.Millisecond))
	m.Fold(2, rejected)
	m.Fold(3, rejected) // a second terminal event of the same correlation
	other := msg(t, events.RejectedType, &events.Rejected{Reason: events.ReasonAlreadyActive, Message: "x"}, "e3", "elsewhere", t0)
	m.Fold(4, other)
	m.Repeated(cmd)

	want := `
# HELP licensebus_commands_total Commands handled by this process, by CloudEvent type and outcome (accepted, rejected, repeated); counted when the outcome is known.
# TYPE licensebus_commands_total counter
licensebus_commands_total{outcome="rejected",type="io.licensebus.smartserver.activate_license"} 1
licensebus_commands_total{outcome="repeated",type="io.licensebus.smartserver.activate_license"} 1
`
	if err := testutil.GatherAndCompare(m.Registry(), strings.NewReader(want), "licensebus_commands_total"); err != nil {
		t.Fatal(err)
	}
	if n := testutil.CollectAndCount(m.Registry(), "licensebus_command_duration_seconds"); n != 1 {
		t.Fatalf("%d latency series, want 1", n)
	}
	h, err := m.Registry().Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range h {
		if f.GetName() == "licensebus_command_duration_seconds" {
			got := f.GetMetric()[0].GetHistogram()
			if got.GetSampleCount() != 1 || got.GetSampleSum() != 0.03 {
				t.Fatalf("latency count %d sum %v, want 1 observation of 0.03 s", got.GetSampleCount(), got.GetSampleSum())
			}
		}
	}
}

// Ensure rejections count by reason and class, and a reason licensebus does
// not define never becomes a label.
func TestRejections(t *testing.T) {
	m := metrics.New(metrics.Config{})
	for _, r := range []events.Reason{events.ReasonAlreadyActive, events.ReasonAlreadyActive, "made_up_by_someone"} {
		m.Appended(msg(t, events.RejectedType, &events.Rejected{Reason: r, Message: "x"}, "id-"+string(r), "", time.Time{}))
	}
	want := `
# HELP licensebus_rejections_total Rejection events this process appended, by reason code and its class.
# TYPE licensebus_rejections_total counter
licensebus_rejections_total{class="conflict",reason="license_already_active"} 2
licensebus_rejections_total{class="internal",reason="other"} 1
`
	if err := testutil.GatherAndCompare(m.Registry(), strings.NewReader(want), "licensebus_rejections_total"); err != nil {
		t.Fatal(err)
	}
}

// Ensure a nil *Metrics records nothing and does not fail: components
// observe without checking.
func TestNilMetrics(t *testing.T) {
	var m *metrics.Metrics
	m.Command(nil)
	m.Repeated(nil)
	m.Unparsed()
	m.Appended(nil)
	m.Fold(1, nil)
	m.PermissionViolation("publish")
	m.SetLeader("audit", true)
}
