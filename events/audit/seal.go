package audit

import (
	"bytes"
	"strconv"
)

// appendEntry writes the JCS form of e, with or without its hash member,
// straight from the struct: its members are ASCII names, so their sorted
// order is fixed and written out here (TestEntryCanonicalMatchesGeneric
// checks it, and every byte, against the generic canonicaliser), without
// the generic path's marshalling, decoding into a map and sorting for
// every entry the auditor writes.
func appendEntry(b *bytes.Buffer, e *Entry, withHash bool) error {
	w := memberWriter{b: b}
	b.WriteByte('{')
	w.str("actor", e.Actor)
	w.str("causation_id", e.CausationID)
	w.str("command_id", e.CommandID)
	w.str("command_type", e.CommandType)
	w.str("correlation_id", e.CorrelationID)
	w.name("cursor")
	b.WriteString(`{"commands":`)
	writeUint(b, e.Cursor.Commands)
	b.WriteString(`,"events":`)
	writeUint(b, e.Cursor.Events)
	b.WriteByte('}')
	w.str("customer_id", e.CustomerID)
	if len(e.Data) > 0 {
		w.name("data")
		if e.canonical {
			b.Write(e.Data)
		} else if err := writeCanonicalRaw(b, e.Data); err != nil {
			return err
		}
	}
	w.str("data_base64", e.DataBase64)
	if e.DataTruncated {
		w.name("data_truncated")
		b.WriteString("true")
	}
	w.str("device_id", e.DeviceID)
	w.strs("device_ids", e.DeviceIDs)
	if withHash {
		w.str("hash", e.Hash)
	}
	w.str("id", e.ID)
	w.str("install_code", e.InstallCode)
	w.str("invalid", e.Invalid)
	w.always("kind", string(e.Kind))
	w.str("license_id", e.LicenseID)
	w.strs("license_ids", e.LicenseIDs)
	w.str("message", e.Message)
	w.always("message_sha256", e.MessageSHA256)
	w.str("mode", e.Mode)
	w.always("prev_hash", e.PrevHash)
	w.str("reason", e.Reason)
	w.str("rejection_id", e.RejectionID)
	w.name("seq")
	writeUint(b, e.Seq)
	w.str("source", e.Source)
	w.always("stream", e.Stream)
	w.name("stream_seq")
	writeUint(b, e.StreamSeq)
	w.always("stream_time", e.StreamTime)
	w.always("subject", e.Subject)
	w.str("time", e.Time)
	w.str("traceparent", e.TraceParent)
	w.str("type", e.Type)
	b.WriteByte('}')
	return nil
}

// memberWriter writes object members, the commas between them included.
type memberWriter struct {
	b    *bytes.Buffer
	some bool
}

func (w *memberWriter) name(k string) {
	if w.some {
		w.b.WriteByte(',')
	}
	w.some = true
	w.b.WriteByte('"')
	w.b.WriteString(k) // names here need no escapes
	w.b.WriteString(`":`)
}

// str writes a member that encoding/json would omit when empty.
func (w *memberWriter) str(k, v string) {
	if v != "" {
		w.always(k, v)
	}
}

func (w *memberWriter) always(k, v string) {
	w.name(k)
	writeString(w.b, v)
}

func (w *memberWriter) strs(k string, vs []string) {
	if len(vs) == 0 {
		return
	}
	w.name(k)
	w.b.WriteByte('[')
	for i, v := range vs {
		if i > 0 {
			w.b.WriteByte(',')
		}
		writeString(w.b, v)
	}
	w.b.WriteByte(']')
}

// writeUint writes n as JCS does: integers up to 2^53 exactly as digits,
// larger ones as the nearest double would print.
func writeUint(b *bytes.Buffer, n uint64) {
	if n <= 1<<53 {
		var d [20]byte
		b.Write(strconv.AppendUint(d[:0], n, 10))
		return
	}
	s, _ := canonicalNumber(strconv.FormatUint(n, 10)) // a uint64 is always a finite double
	b.WriteString(s)
}

// writeCanonicalRaw writes the JSON document raw in canonical form.
func writeCanonicalRaw(b *bytes.Buffer, raw []byte) error {
	v, err := decodeJSON(raw)
	if err != nil {
		return err
	}
	return writeCanonical(b, v)
}
