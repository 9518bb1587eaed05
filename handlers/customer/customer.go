// Package customer holds the rules of a customer/project account in the
// license cloud (the License Partner Portal's accounts): pure functions,
// see package handlers.
package customer

import (
	"github.com/licensebus/licensebus/events"
	"github.com/licensebus/licensebus/handlers"
)

// State is what the cloud knows of one customer account.
type State struct {
	Exists bool
	Name   string
}

// ID is the customer a CreateCustomer command creates: its CustomerID, or
// one derived from the command's id, so a repeated command names the same
// customer.
func ID(commandID string, c *events.CreateCustomer) string {
	if c.CustomerID != "" {
		return c.CustomerID
	}
	return events.DeriveID(commandID, "customer")
}

// Evolve folds one event of the customer into s.
func Evolve(s State, d events.Data) State {
	if e, ok := d.(*events.CustomerCreated); ok {
		return State{Exists: true, Name: e.Name}
	}
	return s
}

// Create decides on CreateCustomer command commandID for the customer in
// state s (the one ID names). An existing customer is refused, saying
// whether the name differs. (The same command repeated gets its first
// outcome without being decided again: see bus.Shell.)
func Create(s State, commandID string, c *events.CreateCustomer) handlers.Decision {
	id := ID(commandID, c)
	if s.Exists {
		if s.Name != c.Name {
			return handlers.Refuse(events.ReasonAlreadyExists, "customer %s exists already with name %q, not %q", id, s.Name, c.Name)
		}
		return handlers.Refuse(events.ReasonAlreadyExists, "customer %s exists already, with that name", id)
	}
	return handlers.Emit(events.CustomerCreatedType, &events.CustomerCreated{CustomerID: id, Name: c.Name},
		events.DeriveID(commandID, "created"))
}

// Reasons are the refusals the customer rules give.
func Reasons() []events.Reason { return []events.Reason{events.ReasonAlreadyExists} }
