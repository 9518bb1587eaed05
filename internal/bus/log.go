package bus

import (
	"github.com/licensebus/licensebus/events"
	"github.com/rs/zerolog"
)

// LogMsg adds the ids of m to a log event. On a disabled level it does
// nothing, so a per-message debug line costs nothing unless it is wanted.
func LogMsg(e *zerolog.Event, m *events.Message) *zerolog.Event {
	if !e.Enabled() || m == nil {
		return e
	}
	return e.Str("ce_id", m.ID()).Str("ce_type", string(m.Type())).Str("correlation_id", m.CorrelationID())
}
