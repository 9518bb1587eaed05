package audit

import "github.com/segmentio/encoding/json"

// The audit stream and its one subject.
const (
	Stream  = "LICENSEBUS_AUDIT"
	Subject = "lb.audit.entries"
)

// The source streams the trail records (the names events gives them).
const (
	CommandsStream = "LICENSEBUS_COMMANDS"
	EventsStream   = "LICENSEBUS_EVENTS"
)

// Size limits of an entry, so that no message, however large or hostile,
// makes an entry the audit stream cannot store. MessageSHA256 still binds
// the entry to everything that was cut.
const (
	MaxField = 1024      // bytes per string field
	MaxData  = 16 * 1024 // bytes of canonical data (or of payload before base64)
)

// GenesisHash is the prev_hash of entry 1.
const GenesisHash = "0000000000000000000000000000000000000000000000000000000000000000"

// Kind says what an entry records.
type Kind string

// Entry kinds.
const (
	KindCommand   Kind = "command"   // a message of the command stream, valid or not
	KindEvent     Kind = "event"     // an event of the event stream
	KindRejection Kind = "rejection" // an io.licensebus.command.rejected event
)

// Known says k is one of the kinds above.
func (k Kind) Known() bool { return k == KindCommand || k == KindEvent || k == KindRejection }

// Cursor is how far the trail has read each source stream: the last stream
// sequence included, up to and including the entry that carries it. The
// auditor resumes after the cursor of the last entry.
type Cursor struct {
	Commands uint64 `json:"commands"` // last sequence of LICENSEBUS_COMMANDS in the trail
	Events   uint64 `json:"events"`   // last sequence of LICENSEBUS_EVENTS in the trail
}

// Advance returns c moved to seq on stream.
func (c Cursor) Advance(stream string, seq uint64) Cursor {
	if stream == CommandsStream {
		c.Commands = seq
	} else {
		c.Events = seq
	}
	return c
}

// Of returns the position of stream.
func (c Cursor) Of(stream string) uint64 {
	if stream == CommandsStream {
		return c.Commands
	}
	return c.Events
}

// Entry is one record of the trail: who (actor), what (kind, type, the ids
// the data names, the data), when (time, stream_time), why (reason and
// message of a rejection; invalid for a message that is not a valid
// CloudEvent) and its place in the chain (seq, cursor, prev_hash, hash).
// Strings are valid UTF-8 of at most 1024 bytes; message_sha256 binds the
// entry to the whole source message.
type Entry struct {
	Seq           uint64 `json:"seq"`                      // position in the trail, from 1, without gaps
	Kind          Kind   `json:"kind"`                     // command, event or rejection
	Stream        string `json:"stream"`                   // source stream: LICENSEBUS_COMMANDS or LICENSEBUS_EVENTS
	StreamSeq     uint64 `json:"stream_seq"`               // sequence of the message in its source stream
	StreamTime    string `json:"stream_time"`              // when the server stored the source message (RFC 3339, UTC, nanoseconds)
	Subject       string `json:"subject"`                  // NATS subject of the source message
	Mode          string `json:"mode,omitempty"`           // CloudEvents mode: binary or structured; absent when the message is not a CloudEvent
	ID            string `json:"id,omitempty"`             // CloudEvent id
	Type          string `json:"type,omitempty"`           // CloudEvent type
	Source        string `json:"source,omitempty"`         // CloudEvent source
	Time          string `json:"time,omitempty"`           // CloudEvent time: RFC 3339 UTC when it parses, else as sent
	Actor         string `json:"actor,omitempty"`          // who: the actor extension
	CorrelationID string `json:"correlation_id,omitempty"` // the correlationid extension, or the id of a message that starts its own chain
	CausationID   string `json:"causation_id,omitempty"`   // the causationid extension: the message that directly caused this one
	TraceParent   string `json:"traceparent,omitempty"`    // the traceparent extension: the W3C trace context of the step that wrote the message

	LicenseID   string   `json:"license_id,omitempty"`   // license_id named in the data
	LicenseIDs  []string `json:"license_ids,omitempty"`  // license_ids named in the data (at most 256)
	InstallCode string   `json:"install_code,omitempty"` // install_code named in the data
	CustomerID  string   `json:"customer_id,omitempty"`  // customer_id named in the data
	DeviceID    string   `json:"device_id,omitempty"`    // device_id named in the data
	DeviceIDs   []string `json:"device_ids,omitempty"`   // device_ids, or the device_id of each of devices, named in the data (at most 256)

	Reason      string `json:"reason,omitempty"`       // why: the reason code of a rejection
	Message     string `json:"message,omitempty"`      // why: the message of a rejection
	CommandID   string `json:"command_id,omitempty"`   // the id of the message a rejection refused
	CommandType string `json:"command_type,omitempty"` // the type of the message a rejection refused
	Invalid     string `json:"invalid,omitempty"`      // "<reason>: <message>" when the message does not decode as a valid licensebus CloudEvent
	// RejectionID is, for a command that is not a CloudEvent at all (so
	// no rejection can name it as its cause), the id of the rejection the
	// handlers record for it.
	RejectionID string `json:"rejection_id,omitempty"`

	Data          json.RawMessage `json:"data,omitempty"`           // the CloudEvent data in canonical JSON, when it is JSON of at most 16 KiB
	DataBase64    string          `json:"data_base64,omitempty"`    // the payload, when it is not JSON (at most 16 KiB)
	DataTruncated bool            `json:"data_truncated,omitempty"` // the data was too large to record; message_sha256 still covers it
	// MessageSHA256 is the hex SHA-256 of the source message: its headers
	// other than Nats-*, sorted by name, as "Name: value\r\n" lines, then
	// "\r\n", then the payload.
	MessageSHA256 string `json:"message_sha256"`

	Cursor   Cursor `json:"cursor"`         // last sequence of each source stream the trail includes up to this entry
	PrevHash string `json:"prev_hash"`      // hash of the entry before (64 zeros for entry 1)
	Hash     string `json:"hash,omitempty"` // hex SHA-256 of prev_hash followed by the JCS form of the entry without hash

	canonical bool // Data is in canonical form already (SetCanonicalData)
}

// SetCanonicalData sets Data to data, which the caller has in its JCS form
// already: Seal then writes it as it is rather than canonicalise it again
// (what it does with Data set directly).
func (e *Entry) SetCanonicalData(data []byte) { e.Data, e.canonical = data, true }
