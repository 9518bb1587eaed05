package audit

import (
	"testing"

	"github.com/licensebus/licensebus/events"
	trail "github.com/licensebus/licensebus/events/audit"
)

// Ensure the trail's format names the source streams as events does (it
// cannot import events, which imports NATS).
func TestSourceStreamNames(t *testing.T) {
	if trail.CommandsStream != events.CommandsStream || trail.EventsStream != events.EventsStream {
		t.Fatalf("trail names %s and %s, events %s and %s", trail.CommandsStream, trail.EventsStream, events.CommandsStream, events.EventsStream)
	}
}
