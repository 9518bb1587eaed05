package audit

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/licensebus/licensebus/events"
	trail "github.com/licensebus/licensebus/events/audit"
	"github.com/nats-io/nats.go"
	"github.com/segmentio/encoding/json"
)

// SourceMsg is one message of a source stream.
type SourceMsg struct {
	Stream  string
	Seq     uint64
	Subject string
	Time    time.Time // when the server stored it
	Header  nats.Header
	Data    []byte
	// Message is the message as decoded already, if it was and decoded
	// without error; Derive decodes it otherwise.
	Message *events.Message
}

// Derive returns the entry that records m, without Seq, Cursor and the
// chain fields. It is a pure function of the message, so anyone holding the
// source streams can recompute every entry and compare.
func Derive(m SourceMsg) trail.Entry { return derive(m, &scratch{}) }

// scratch is memory derive reuses from one message to the next.
type scratch struct {
	keys []string
	buf  []byte
}

func derive(m SourceMsg, sc *scratch) trail.Entry {
	e := trail.Entry{
		Kind:          trail.KindEvent,
		Stream:        m.Stream,
		StreamSeq:     m.Seq,
		StreamTime:    m.Time.UTC().Format(time.RFC3339Nano),
		Subject:       clip(m.Subject),
		MessageSHA256: sc.digest(m.Header, m.Data),
	}
	if m.Stream == events.CommandsStream {
		e.Kind = trail.KindCommand
	}
	msg, err := m.Message, error(nil)
	if msg == nil {
		msg, err = events.Decode(m.Header, m.Data)
	}
	env := envelopeOf(msg, m.Header, m.Data)
	if err != nil {
		e.Invalid = clip(err.Error())
		if r := events.AsRejection(err); r != nil {
			e.Invalid = clip(string(r.Reason) + ": " + r.Message)
		}
	}
	if msg == nil && m.Stream == events.CommandsStream {
		// Not a CloudEvent: the handler's rejection cannot name it as its
		// cause, so it derives its id from where the message is (bus.Shell.Screen).
		e.RejectionID = events.DeriveID(fmt.Sprintf("%s-%d", m.Subject, m.Seq), "rejected")
	}
	e.Mode, e.ID, e.Type, e.Source, e.Time = env.mode, clip(env.id), clip(env.typ), clip(env.source), clip(env.time)
	e.Actor, e.CorrelationID, e.CausationID = clip(env.actor), clip(env.correlation), clip(env.causation)
	e.TraceParent = clip(env.traceparent)
	if e.Kind == trail.KindEvent && e.Type == string(events.RejectedType) {
		e.Kind = trail.KindRejection
	}
	setData(&e, env.data)
	return e
}

// envelope is what a message says about itself.
type envelope struct {
	mode, id, typ, source, time, actor, correlation, causation string
	traceparent                                                string
	data                                                       []byte
}

// envelopeOf reads the envelope from the decoded message, or — for a
// message events.Decode refused — leniently from its headers or structured
// body, so a malformed command still shows who sent it as far as it says.
func envelopeOf(msg *events.Message, h nats.Header, body []byte) envelope {
	var env envelope
	structured := isStructured(h)
	switch {
	case msg != nil:
		ev := &msg.Event
		env = envelope{id: ev.ID(), typ: ev.Type(), source: ev.Source(), actor: msg.Actor(),
			correlation: msg.CorrelationID(), causation: msg.CausationID(), traceparent: msg.TraceParent(), data: ev.Data()}
		if !ev.Time().IsZero() {
			env.time = ev.Time().UTC().Format(time.RFC3339Nano)
		}
	case structured:
		var s map[string]json.RawMessage
		if json.Unmarshal(body, &s) != nil {
			return envelope{mode: "structured", data: body}
		}
		str := func(k string) string {
			var v string
			_ = json.Unmarshal(s[k], &v)
			return v
		}
		env = envelope{id: str("id"), typ: str("type"), source: str("source"), time: str("time"),
			actor: str(events.ExtActor), correlation: str(events.ExtCorrelationID), causation: str(events.ExtCausationID),
			traceparent: str(events.ExtTraceParent), data: s["data"]}
		if env.correlation == "" {
			env.correlation = env.id
		}
	default:
		ce := map[string]string{}
		for k, vs := range h {
			if lk := strings.ToLower(k); strings.HasPrefix(lk, "ce-") && len(vs) > 0 {
				ce[lk[3:]] = pctDecodeLenient(vs[0])
			}
		}
		if len(ce) == 0 {
			return envelope{data: body}
		}
		env = envelope{id: ce["id"], typ: ce["type"], source: ce["source"], time: ce["time"],
			actor: ce[events.ExtActor], correlation: ce[events.ExtCorrelationID], causation: ce[events.ExtCausationID],
			traceparent: ce[events.ExtTraceParent], data: body}
		if env.correlation == "" {
			env.correlation = env.id
		}
	}
	if msg == nil && env.time != "" {
		if t, err := time.Parse(time.RFC3339Nano, env.time); err == nil {
			env.time = t.UTC().Format(time.RFC3339Nano)
		}
	}
	env.mode = "binary"
	if structured {
		env.mode = "structured"
	}
	return env
}

func isStructured(h nats.Header) bool {
	for k, vs := range h {
		if strings.EqualFold(k, "content-type") && len(vs) > 0 && strings.HasPrefix(strings.ToLower(vs[0]), "application/cloudevents") {
			return true
		}
	}
	return false
}

// setData records the data and the ids and reasons it names.
func setData(e *trail.Entry, data []byte) {
	if len(data) == 0 {
		return
	}
	if canon, ok := plainCanonical(data); ok {
		if len(canon) <= trail.MaxData {
			e.SetCanonicalData(canon)
		} else {
			e.DataTruncated = true
		}
		plainFields(e, data)
		return
	}
	setDataGeneric(e, data)
}

// setDataGeneric is setData for any data.
func setDataGeneric(e *trail.Entry, data []byte) {
	canon, doc, err := trail.CanonicalValue(data)
	if err != nil {
		if len(data) <= trail.MaxData {
			e.DataBase64 = base64.StdEncoding.EncodeToString(data)
		} else {
			e.DataTruncated = true
		}
		return
	}
	if len(canon) <= trail.MaxData {
		e.SetCanonicalData(canon)
	} else {
		e.DataTruncated = true
	}
	obj, ok := doc.(map[string]any)
	if !ok {
		return
	}
	str := func(k string) string {
		s, _ := obj[k].(string)
		return clip(s)
	}
	e.LicenseID, e.InstallCode, e.CustomerID, e.DeviceID = str("license_id"), str("install_code"), str("customer_id"), str("device_id")
	e.LicenseIDs, e.DeviceIDs = strs(obj["license_ids"]), strs(obj["device_ids"])
	if devs, ok := obj["devices"].([]any); ok { // batches of devices, each with its device_id
		for _, d := range devs {
			if m, ok := d.(map[string]any); ok && len(e.DeviceIDs) < maxIDs {
				if id, ok := m["device_id"].(string); ok && id != "" {
					e.DeviceIDs = append(e.DeviceIDs, clip(id))
				}
			}
		}
	}
	if e.Kind == trail.KindRejection {
		e.Reason, e.Message, e.CommandID, e.CommandType = str("reason"), str("message"), str("command_id"), str("command_type")
	}
}

// maxIDs bounds the ids listed from one array of the data.
const maxIDs = 256

// strs returns the strings of a JSON array, clipped, at most maxIDs.
func strs(v any) []string {
	arr, _ := v.([]any)
	var out []string
	for _, x := range arr {
		if s, ok := x.(string); ok && len(out) < maxIDs {
			out = append(out, clip(s))
		}
	}
	return out
}

// digest is the SHA-256 of a message: its headers except the Nats-* ones
// (transport and JetStream metadata, which differ between a consumer
// delivery and a direct get), sorted, then the payload.
func digest(h nats.Header, body []byte) string { return (&scratch{}).digest(h, body) }

// digest is the package's digest in sc's memory.
func (sc *scratch) digest(h nats.Header, body []byte) string {
	keys := sc.keys[:0]
	for k := range h {
		if !natsHeader(k) {
			keys = append(keys, k)
		}
	}
	slices.Sort(keys)
	// One buffer, hashed once: the header lines, a blank line, the body.
	b := sc.buf[:0]
	for _, k := range keys {
		for _, v := range h[k] {
			b = append(b, k...)
			b = append(b, ": "...)
			b = append(b, v...)
			b = append(b, "\r\n"...)
		}
	}
	b = append(b, "\r\n"...)
	b = append(b, body...)
	sum := sha256.Sum256(b)
	clear(keys) // hold no header's strings until the next message
	if cap(b) > 64<<10 {
		b = nil // a large command's buffer is not kept for the small ones
	}
	sc.keys, sc.buf = keys[:0], b[:0]
	return hex.EncodeToString(sum[:])
}

// natsHeader says k starts with "nats-" in any case of its ASCII letters
// (as strings.ToLower(k) would, without building the lower-case copy).
func natsHeader(k string) bool {
	const p = "nats-"
	if len(k) < len(p) {
		return false
	}
	for i := 0; i < len(p); i++ {
		c := k[i]
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		if c != p[i] {
			return false
		}
	}
	return true
}

// clip makes s valid UTF-8 of at most MaxField bytes.
func clip(s string) string {
	s = strings.ToValidUTF8(s, "\uFFFD")
	if len(s) <= trail.MaxField {
		return s
	}
	const mark = "…[truncated]"
	cut := trail.MaxField - len(mark)
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + mark
}

// pctDecodeLenient undoes the NATS binding's percent-encoding; a value
// with a bad escape is kept as it is: this records what a malformed
// message said.
func pctDecodeLenient(s string) string {
	if v, err := events.UnescapeHeader(s); err == nil {
		return v
	}
	return s
}
