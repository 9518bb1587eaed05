package bus

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
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
	// A dead letter whose original does not fit in one NATS message with
	// these headers is a reference: HdrDLQTruncated is "true", the payload
	// is the original's first DeadLetterHead bytes, and HdrDLQSize and
	// HdrDLQSHA256 are the length and hex SHA-256 of the whole original
	// payload. The original stays in its stream at HdrDLQSeq.
	HdrDLQSize      = "Licensebus-Size"
	HdrDLQSHA256    = "Licensebus-Sha256"
	HdrDLQTruncated = "Licensebus-Truncated"
)

// DeadLetterHead is how much of a payload a dead-letter reference keeps.
const DeadLetterHead = 1024

// maxErrorHeader bounds the error a dead letter carries: an error can quote
// its input, and the input can be as large as a message.
const maxErrorHeader = 1024

// maxCopiedHeaders bounds the original headers a reference keeps.
const maxCopiedHeaders = 8 << 10

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

// put publishes the whole message, or a reference to it when the copy
// would not fit in one NATS message (the server's payload limit, or the
// dead-letter stream's message size limit).
func (dl *DeadLetters) put(ctx context.Context, stream string, seq uint64, subject string, hdr nats.Header, data []byte, cause error) error {
	subj := "lb.dlq." + strings.ToLower(strings.TrimPrefix(stream, "LICENSEBUS_"))
	h := letterHeader(stream, seq, subject, cause)
	copyHeaders(h, hdr)
	if max := dl.js.Conn().MaxPayload(); max <= 0 || int64(len(data)+headerSize(h)) <= max {
		_, err := dl.js.PublishMsg(ctx, &nats.Msg{Subject: subj, Header: h, Data: data})
		if err == nil {
			return nil
		}
		if !tooLarge(err) {
			return fmt.Errorf("dead letter: %w", err)
		}
	}
	h = letterHeader(stream, seq, subject, cause)
	if headerSize(hdr) <= maxCopiedHeaders {
		copyHeaders(h, hdr)
	}
	sum := sha256.Sum256(data)
	h.Set(HdrDLQSize, strconv.Itoa(len(data)))
	h.Set(HdrDLQSHA256, hex.EncodeToString(sum[:]))
	h.Set(HdrDLQTruncated, "true")
	if _, err := dl.js.PublishMsg(ctx, &nats.Msg{Subject: subj, Header: h, Data: data[:min(len(data), DeadLetterHead)]}); err != nil {
		return fmt.Errorf("dead letter (reference): %w", err)
	}
	return nil
}

// letterHeader is the header of a dead letter without the original's.
func letterHeader(stream string, seq uint64, subject string, cause error) nats.Header {
	h := nats.Header{}
	h.Set(HdrDLQError, headerValue(cause.Error(), maxErrorHeader))
	h.Set(HdrDLQStream, stream)
	h.Set(HdrDLQSeq, strconv.FormatUint(seq, 10))
	h.Set(HdrDLQSubject, subject)
	h.Set(nats.MsgIdHdr, "dlq-"+stream+"-"+strconv.FormatUint(seq, 10))
	return h
}

// copyHeaders adds the original's headers to h, but for the ones JetStream
// would act on again.
func copyHeaders(h, orig nats.Header) {
	for k, v := range orig {
		if k == nats.MsgIdHdr || strings.HasPrefix(k, "Nats-Expected") {
			continue
		}
		if _, ours := h[k]; ours {
			continue
		}
		h[k] = v
	}
}

// headerValue makes s a header value of at most n bytes on one line.
func headerValue(s string, n int) string {
	s = strings.Map(func(r rune) rune {
		if r == '\r' || r == '\n' {
			return ' '
		}
		return r
	}, s)
	if len(s) > n {
		s = strings.ToValidUTF8(s[:n], "") + "…"
	}
	return s
}

// headerSize is about what h takes on the wire.
func headerSize(h nats.Header) int {
	n := len("NATS/1.0\r\n\r\n")
	for k, vs := range h {
		for _, v := range vs {
			n += len(k) + len(v) + len(": \r\n")
		}
	}
	return n
}

// tooLarge says err is a refusal of a message for its size.
func tooLarge(err error) bool {
	var ae *jetstream.APIError
	return errors.Is(err, nats.ErrMaxPayload) ||
		(errors.As(err, &ae) && ae.ErrorCode == jetstream.JSErrCodeStreamMessageExceedsMaximum)
}
