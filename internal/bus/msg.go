package bus

import (
	"github.com/licensebus/licensebus/events"
	"github.com/nats-io/nats.go"
)

// Msg is m as a NATS message, in structured mode (events.Message.Encode).
func Msg(m *events.Message) *nats.Msg { return natsMsg(m.Encode()) }

// BinaryMsg is m as a binary-mode NATS message, as outside clients may
// send it.
func BinaryMsg(m *events.Message) *nats.Msg { return natsMsg(m.EncodeBinary()) }

func natsMsg(w events.Msg) *nats.Msg {
	return &nats.Msg{Subject: w.Subject, Header: nats.Header(w.Header), Data: w.Data}
}
