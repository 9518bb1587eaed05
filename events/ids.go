package events

import (
	"crypto/sha256"
	"encoding/hex"

	"github.com/google/uuid"
	"github.com/segmentio/encoding/json"
)

// idSpace namespaces the ids licensebus derives for what it writes.
var idSpace = uuid.MustParse("6f1c2a52-8a8e-4b57-9a43-3c7e8c1d5a10")

// DeriveID returns a stable UUID for what cause produces under name.
// Handling the same cause again gives the same id, so JetStream dedupes the
// second append instead of storing a second effect.
func DeriveID(cause, name string) string {
	return uuid.NewSHA1(idSpace, []byte(cause+"/"+name)).String()
}

// CommandDigest identifies what a command asks, whatever its id: its type
// and its data as licensebus encodes them (so two clients that order the
// JSON members differently agree). Two commands with one id and different
// digests are different commands.
func CommandDigest(t Type, d Data) string {
	body, err := json.Marshal(d)
	if err != nil {
		return ""
	}
	h := sha256.New()
	h.Write([]byte(t))
	h.Write([]byte{0})
	h.Write(body)
	return hex.EncodeToString(h.Sum(nil)[:8])
}

// Digest is the CommandDigest of m, a command; "" if its data did not
// decode.
func (m *Message) Digest() string {
	if m.Data == nil {
		return ""
	}
	return CommandDigest(m.Type(), m.Data)
}
