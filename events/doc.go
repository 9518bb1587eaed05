// Package events is the licensebus vocabulary: the CloudEvent types of every
// command and event, their data structs, the NATS subjects they travel on,
// their validation and their encoding on NATS messages.
//
// Nothing in this package talks to the network; it only turns values into
// messages and messages back into values.
//
// Naming rules, so an outside consumer can predict everything:
//
//   - CloudEvent types are "io.licensebus.<aggregate>.<verb>", imperative for
//     commands (io.licensebus.smartserver.activate_license) and past tense for
//     events (io.licensebus.smartserver.license_activated).
//   - Commands travel on "lb.cmd.cloud.<verb>" (cloud side) or
//     "lb.cmd.device.<install-code>.<verb>" (device side).
//   - Events travel on "lb.evt.<aggregate>.<id>.<verb>", so one aggregate
//     can be replayed alone with the filter "lb.evt.<aggregate>.<id>.>".
//   - Rejections travel on "lb.evt.rejected.<aggregate>.<id>".
package events
