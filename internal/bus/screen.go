package bus

import (
	"context"
	"fmt"
	"strconv"

	"github.com/licensebus/licensebus/events"
)

// Screen checks that a command delivery is a well-formed command that the
// caller handles (accept). If not — not a CloudEvent, unknown type, bad data,
// a type for the other side — it dead-letters the message with the error,
// appends a Rejected event saying why, and returns false. An error return
// is transient (the appends failed) and means "redeliver".
func Screen(ctx context.Context, app *Appender, dl *DeadLetters, d *Delivery, accept func(events.Info) bool, source string) (bool, error) {
	rej := events.AsRejection(d.Err)
	if d.Err != nil && rej == nil {
		rej = events.Reject(events.ReasonMalformed, "%v", d.Err)
	}
	if rej == nil && !accept(d.Message.Info) {
		rej = events.Reject(events.ReasonUnknownType, "%s is not a command handled on %s", d.Message.Type(), d.Msg.Subject())
	}
	if rej == nil {
		if ic := events.CommandInstallCode(d.Msg.Subject()); ic != "" && ic != d.Message.Data.Key() {
			// Not poison: a caller error, rejected without a dead letter.
			_, _, err := app.Reject(ctx, d.Message, "", events.Reject(events.ReasonSubjectMismatch,
				"subject names SmartServer %q but data names %q", ic, d.Message.Data.Key()), source, "smartserver", d.Message.Data.Key())
			return false, err
		}
		return true, nil
	}
	if dl != nil {
		if err := dl.Put(ctx, d, rej); err != nil {
			return false, err
		}
	}
	aggregate, id := "", ""
	if d.Message != nil {
		aggregate = d.Message.Info.Aggregate
		if d.Message.Data != nil {
			id = d.Message.Data.Key()
		}
	}
	key := fmt.Sprintf("%s-%s", d.Msg.Subject(), strconv.FormatUint(d.Seq, 10))
	_, _, err := app.Reject(ctx, d.Message, key, rej, source, aggregate, id)
	return false, err
}
