// Package handlers holds what the rules of every aggregate share: a
// Decision.
//
// The rules live in one package per aggregate, as pure functions of plain
// values — no context, no locks, no NATS, no clock (time comes in as an
// argument):
//
//   - customer, license: the license cloud's customer accounts and license
//     inventory, and the one place a license is bound to a SmartServer;
//   - smartserver: a SmartServer, its licenses and its DMM devices, and the
//     one fold of its state that the device side, the provisioner and the
//     devices view share;
//   - rollout: a fleet rollout and what its driver does next;
//   - provisioning: what reactive provisioning sends next.
//
// Each has Decide (state + command → a Decision) and Evolve (state + event
// → state), and a table of given/when/then cases in its spec_test.go that
// reads as the domain's rules.
//
// The adapters connect them to the bus through one shell (internal/bus
// Shell: catch-up, expected-sequence appends, derived ids, retries, the
// handled set): cloud (customer and license), device (smartserver), driver
// (rollout) and provisioner (provisioning). They never write projections.
package handlers
