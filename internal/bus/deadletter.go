package bus

import (
	"context"
	"fmt"
	"strconv"
	"strings"

	"github.com/licensebus/licensebus/events"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Headers a dead letter carries besides the original ones.
const (
	HdrDLQError   = "Licensebus-Error"
	HdrDLQStream  = "Licensebus-Stream"
	HdrDLQSeq     = "Licensebus-Stream-Seq"
	HdrDLQSubject = "Licensebus-Subject"
)

// DeadLetters stores messages that cannot be handled on the dead-letter
// stream, on "lb.dlq.<stream>", with the original headers and payload and
// the error, so nothing is lost and nothing blocks the stream behind it.
type DeadLetters struct {
	js jetstream.JetStream
}

// NewDeadLetters returns a DeadLetters publishing with js.
func NewDeadLetters(js jetstream.JetStream) *DeadLetters { return &DeadLetters{js: js} }

// Put dead-letters d with its error. It is idempotent per source message.
func (dl *DeadLetters) Put(ctx context.Context, d *Delivery, cause error) error {
	md, err := d.Msg.Metadata()
	if err != nil {
		return fmt.Errorf("dead letter: %w", err)
	}
	return dl.put(ctx, md.Stream, md.Sequence.Stream, d.Msg.Subject(), d.Msg.Headers(), d.Msg.Data(), cause)
}

// PutEvent dead-letters the event stored at seq of the event stream, as
// decoded (a reactor holds no raw message), with its error.
func (dl *DeadLetters) PutEvent(ctx context.Context, seq uint64, m *events.Message, cause error) error {
	msg := Msg(m)
	return dl.put(ctx, events.EventsStream, seq, msg.Subject, msg.Header, msg.Data, cause)
}

func (dl *DeadLetters) put(ctx context.Context, stream string, seq uint64, subject string, hdr nats.Header, data []byte, cause error) error {
	h := nats.Header{}
	for k, v := range hdr {
		if k == nats.MsgIdHdr || strings.HasPrefix(k, "Nats-Expected") {
			continue
		}
		h[k] = v
	}
	h.Set(HdrDLQError, cause.Error())
	h.Set(HdrDLQStream, stream)
	h.Set(HdrDLQSeq, strconv.FormatUint(seq, 10))
	h.Set(HdrDLQSubject, subject)
	h.Set(nats.MsgIdHdr, "dlq-"+stream+"-"+strconv.FormatUint(seq, 10))
	subj := "lb.dlq." + strings.ToLower(strings.TrimPrefix(stream, "LICENSEBUS_"))
	if _, err := dl.js.PublishMsg(ctx, &nats.Msg{Subject: subj, Header: h, Data: data}); err != nil {
		return fmt.Errorf("dead letter: %w", err)
	}
	return nil
}
