package audit

import (
	"testing"

	"github.com/licensebus/licensebus/events"
	trail "github.com/licensebus/licensebus/events/audit"
	"github.com/licensebus/licensebus/internal/bus"
)

// Ensure the trail's format names the source streams as events does (it
// cannot import events, which imports NATS).
func TestSourceStreamNames(t *testing.T) {
	if trail.CommandsStream != events.CommandsStream || trail.EventsStream != events.EventsStream {
		t.Fatalf("trail names %s and %s, events %s and %s", trail.CommandsStream, trail.EventsStream, events.CommandsStream, events.EventsStream)
	}
}

// Ensure the audit stream's dedupe window is what a retried append needs
// and no more: a retry comes once an append has waited ackWait for its
// ack, and every id of the window (one per message of the command and
// event streams) stays in the NATS server's memory. Neither is it longer
// than the source streams' windows.
func TestStreamDedupeWindow(t *testing.T) {
	if got := StreamConfig().Duplicates; got != ackWait {
		t.Errorf("audit dedupe window %s, want the %s an append waits for its ack", got, ackWait)
	}
	if got, limit := DedupeWindow, min(bus.CommandDedupeWindow, bus.EventDedupeWindow); got > limit {
		t.Errorf("audit dedupe window %s is longer than the source streams' %s", got, limit)
	}
}
