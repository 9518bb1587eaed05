// Package audit is the format of licensebus's tamper-evident audit trail,
// and what it takes to check one: the entry, its canonical JSON (RFC 8785,
// JCS), the hash chain, verification, the causal trace of a command and
// the filters of audit tail. It imports nothing from NATS, so a program
// outside licensebus can verify an export (licensebus audit export) with it
// alone; the auditor that writes the trail and the readers of the live
// streams are in licensebus's internal/audit.
//
// The trail has one entry per message of the command stream (valid
// CloudEvent or not) and of the event stream (events and rejections), on a
// stream of its own, LICENSEBUS_AUDIT, subject lb.audit.entries;
// docs/consumers.md describes the format for any language.
//
// # Chain
//
// One chain covers the whole trail. Entry n carries seq n, prev_hash (the
// hash of entry n-1, or 64 zeros for entry 1) and
//
//	hash = hex(SHA-256(prev_hash || JCS(entry without "hash")))
//
// The message stored on the stream is the JCS form of the whole entry, so
// an export is the stored bytes. Editing, dropping, reordering or
// inserting an entry breaks the chain in a way Verifier tells apart.
package audit
