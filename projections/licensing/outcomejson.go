package licensing

import (
	"strconv"
	"time"
)

// appendOutcome appends o as MarshalEntry would encode it, for the common
// case only: every string and the data made of printable ASCII that JSON
// encoding (with HTML escaping) leaves as it is. ok is false otherwise, and
// the caller uses the generic encoder. One outcome is written per command,
// and a rebuild encodes them all again: reflection was a third of the cost.
func appendOutcome(b []byte, o *Outcome) (_ []byte, ok bool) {
	if !plain(o.CorrelationID) || !plain(o.Status) || !plain(o.EventID) || !plain(o.EventType) ||
		!plain(o.Reason) || !plain(o.Message) || !plain(o.CommandDigest) || !plainData(o.Data) {
		return b, false
	}
	b = append(b, `{"correlation_id":"`...)
	b = append(b, o.CorrelationID...)
	b = append(b, `","status":"`...)
	b = append(b, o.Status...)
	b = append(b, `","event_id":"`...)
	b = append(b, o.EventID...)
	b = append(b, `","event_type":"`...)
	b = append(b, o.EventType...)
	b = append(b, '"')
	if o.Reason != "" {
		b = append(b, `,"reason":"`...)
		b = append(b, o.Reason...)
		b = append(b, '"')
	}
	if o.Message != "" {
		b = append(b, `,"message":"`...)
		b = append(b, o.Message...)
		b = append(b, '"')
	}
	if o.CommandDigest != "" {
		b = append(b, `,"command_digest":"`...)
		b = append(b, o.CommandDigest...)
		b = append(b, '"')
	}
	b = append(b, `,"time":"`...)
	b = o.Time.AppendFormat(b, time.RFC3339Nano)
	b = append(b, `","seq":`...)
	b = strconv.AppendUint(b, o.Seq, 10)
	b = append(b, `,"data":`...)
	if len(o.Data) == 0 {
		b = append(b, "null"...)
	} else {
		b = append(b, o.Data...)
	}
	return append(b, '}'), true
}

// plain says s needs no escaping in a JSON string: printable ASCII other
// than the quote, the backslash and the characters HTML escaping rewrites.
func plain(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c > 0x7e || c == '"' || c == '\\' || c == '<' || c == '>' || c == '&' {
			return false
		}
	}
	return true
}

// plainData says compacting and HTML-escaping the (valid) JSON data leaves
// it as it is: no white space between tokens, no escapes, nothing but
// printable ASCII and none of the characters HTML escaping rewrites.
// Without backslashes every quote opens or closes a string, so a space is
// told inside a string (kept: names have them) from one between tokens.
func plainData(d []byte) bool {
	in := false
	for _, c := range d {
		switch {
		case c == '"':
			in = !in
		case c == ' ':
			if !in {
				return false
			}
		case c < 0x20 || c > 0x7e || c == '\\' || c == '<' || c == '>' || c == '&':
			return false
		}
	}
	return !in
}
