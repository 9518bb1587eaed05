// Package spec helps write the rules' given/when/then tables: it builds
// the messages a table gives and checks the decisions it expects.
package spec

import (
	"fmt"
	"reflect"
	"slices"
	"testing"

	"github.com/licensebus/licensebus/events"
	"github.com/licensebus/licensebus/handlers"
)

// Event is an event of type t with data d, CloudEvent id id, caused by
// causation ("" for none). It panics on data a table should not hold.
func Event(t events.Type, d events.Data, id, causation string) *events.Message {
	m, err := events.New(t, d, events.Meta{ID: id, Source: "/spec", CausationID: causation, CorrelationID: causation})
	if err != nil {
		panic(fmt.Sprintf("spec: %s: %v", t, err))
	}
	return m
}

// Then is what a row expects: an event (Type and Data), a refusal
// (Reason), or nothing (all zero).
type Then struct {
	Type   events.Type
	Data   events.Data
	Reason events.Reason
}

// Check fails tb unless got is what want expects. Times in the event data
// are compared as they are: tables pass the time they expect.
func Check(tb testing.TB, got handlers.Decision, want Then) {
	tb.Helper()
	switch {
	case want.Reason != "":
		if got.Refuse == nil || got.Refuse.Reason != want.Reason {
			tb.Fatalf("decision=%v, want refusal %s", got, want.Reason)
		}
		if got.Refuse.Message == "" {
			tb.Fatalf("refusal %s without a message", want.Reason)
		}
	case want.Type != "":
		if got.Event == nil || got.Event.Type != want.Type || !reflect.DeepEqual(got.Event.Data, want.Data) {
			tb.Fatalf("decision=%v, want emit %s %+v", got, want.Type, want.Data)
		}
		if got.Event.ID == "" {
			tb.Fatalf("event %s without an id", want.Type)
		}
	default:
		if got.Event != nil || got.Refuse != nil {
			tb.Fatalf("decision=%v, want nothing", got)
		}
	}
}

// Covers fails tb unless every reason of owned is expected by some row
// (reasons lists what the rows expect): each reason a rule can give has a
// row that gives it.
func Covers(tb testing.TB, owned, reasons []events.Reason) {
	tb.Helper()
	for _, r := range owned {
		if !slices.Contains(reasons, r) {
			tb.Errorf("no row of the spec gives %s", r)
		}
	}
}
