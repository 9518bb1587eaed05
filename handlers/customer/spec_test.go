package customer_test

import (
	"testing"

	"github.com/licensebus/licensebus/events"
	"github.com/licensebus/licensebus/handlers/customer"
	"github.com/licensebus/licensebus/handlers/spec"
)

// The rules of a customer account, as given/when/then.
func TestSpec(t *testing.T) {
	const cid = "2133c667-af41-4518-94df-a2bb3b775330"
	created := func(name string) events.Data { return &events.CustomerCreated{CustomerID: cid, Name: name} }
	tests := []struct {
		name  string
		given []events.Data
		when  *events.CreateCustomer
		then  spec.Then
	}{
		{"a new account gets the Customer ID asked for", nil, &events.CreateCustomer{CustomerID: cid, Name: "P2022-0208"},
			spec.Then{Type: events.CustomerCreatedType, Data: created("P2022-0208")}},
		{"without one, the Customer ID derives from the command",
			nil, &events.CreateCustomer{Name: "P-1"},
			spec.Then{Type: events.CustomerCreatedType, Data: &events.CustomerCreated{CustomerID: events.DeriveID("cmd-1", "customer"), Name: "P-1"}}},
		{"an existing account is not created again", []events.Data{created("P-1")}, &events.CreateCustomer{CustomerID: cid, Name: "P-1"},
			spec.Then{Reason: events.ReasonAlreadyExists}},
		{"another name for an existing account is refused", []events.Data{created("P-1")}, &events.CreateCustomer{CustomerID: cid, Name: "P-2"},
			spec.Then{Reason: events.ReasonAlreadyExists}},
	}
	var reasons []events.Reason
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var s customer.State
			for _, d := range tt.given {
				s = customer.Evolve(s, d)
			}
			spec.Check(t, customer.Create(s, "cmd-1", tt.when), tt.then)
		})
		reasons = append(reasons, tt.then.Reason)
	}
	spec.Covers(t, customer.Reasons(), reasons)
}
