package bus

import (
	"context"
	"fmt"
	"strconv"
	"strings"

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
	h := nats.Header{}
	for k, v := range d.Msg.Headers() {
		if k == nats.MsgIdHdr || strings.HasPrefix(k, "Nats-Expected") {
			continue
		}
		h[k] = v
	}
	h.Set(HdrDLQError, cause.Error())
	h.Set(HdrDLQStream, md.Stream)
	h.Set(HdrDLQSeq, strconv.FormatUint(md.Sequence.Stream, 10))
	h.Set(HdrDLQSubject, d.Msg.Subject())
	h.Set(nats.MsgIdHdr, "dlq-"+md.Stream+"-"+strconv.FormatUint(md.Sequence.Stream, 10))
	subj := "lb.dlq." + strings.ToLower(strings.TrimPrefix(md.Stream, "LICENSEBUS_"))
	if _, err := dl.js.PublishMsg(ctx, &nats.Msg{Subject: subj, Header: h, Data: d.Msg.Data()}); err != nil {
		return fmt.Errorf("dead letter: %w", err)
	}
	return nil
}
