package handlers_test

import (
	"slices"
	"testing"

	"github.com/licensebus/licensebus/events"
	"github.com/licensebus/licensebus/handlers/customer"
	"github.com/licensebus/licensebus/handlers/license"
	"github.com/licensebus/licensebus/handlers/rollout"
	"github.com/licensebus/licensebus/handlers/signing"
	"github.com/licensebus/licensebus/handlers/smartserver"
	"github.com/licensebus/licensebus/internal/bus"
)

// Ensure every reason of the table is given by someone: a rule (each
// package's spec has a row for each of its reasons), the shell, or one of
// the few refusals that are about queries and checks rather than commands.
func TestEveryReasonIsGiven(t *testing.T) {
	notCommands := []events.Reason{
		events.ReasonBadRequest, events.ReasonUnknownQuery, events.ReasonNotFound, // the query API
		events.ReasonTampered,         // audit verify
		events.ReasonOutOfStep,        // projections and reactors status
		events.ReasonPermissionDenied, // the NATS server, for identities
		events.ReasonInternal,         // a fault, never a rule
	}
	given := slices.Concat(customer.Reasons(), license.Reasons(), smartserver.Reasons(), rollout.Reasons(), signing.Reasons(), bus.Reasons(), notCommands)
	for _, r := range events.Reasons() {
		if !slices.Contains(given, r) {
			t.Errorf("reason %s (%s) is given by no rule, no shell check and no query", r, r.Class())
		}
	}
	for _, r := range given {
		if !slices.Contains(events.Reasons(), r) {
			t.Errorf("reason %s is given but not in the table", r)
		}
	}
}
