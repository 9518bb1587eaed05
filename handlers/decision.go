package handlers

import (
	"fmt"

	"github.com/licensebus/licensebus/events"
)

// Event is an event a rule decided to append: its type, its data, and its
// CloudEvent id, which the rule derives from what caused it
// (events.DeriveID) so that deciding again yields the same id and
// JetStream stores it once.
type Event struct {
	Type events.Type
	Data events.Data
	ID   string
}

// Decision is what a rule decided on one command or reaction, on the state
// it was given: an event to append, a refusal, or nothing (a repeat, or
// nothing to do).
type Decision struct {
	Event  *Event
	Refuse *events.Rejection
}

// Emit decides to append an event of type t with data d and id id.
func Emit(t events.Type, d events.Data, id string) Decision {
	return Decision{Event: &Event{Type: t, Data: d, ID: id}}
}

// Refuse decides to refuse, for reason, with a message saying why.
func Refuse(reason events.Reason, format string, args ...any) Decision {
	return Decision{Refuse: &events.Rejection{Reason: reason, Message: fmt.Sprintf(format, args...)}}
}

// Nothing decides there is nothing to append.
func Nothing() Decision { return Decision{} }

// String reads a Decision in test failures.
func (d Decision) String() string {
	switch {
	case d.Refuse != nil:
		return "refuse " + d.Refuse.Error()
	case d.Event != nil:
		return fmt.Sprintf("emit %s %+v", d.Event.Type, d.Event.Data)
	}
	return "nothing"
}
