// Package audit writes and reads licensebus's audit trail on NATS: the
// auditor, which appends one entry per message of the command and event
// streams to LICENSEBUS_AUDIT, and the readers of the live trail and of
// the source messages it records. The format itself (entry, canonical
// JSON, chain, verification, trace) is package events/audit, which imports
// nothing from NATS.
//
// It lives in internal/ rather than projections/ because it is plumbing, not
// a read model: it follows two streams (projections follow only the event
// stream), and its output is an append-only hash chain with single-writer
// enforcement rather than a KV view the Runner can throw away and rebuild.
//
// # Order across the two streams
//
// Entries are in the order the server stored the source messages: a merge
// of both streams by stream timestamp (ties: commands first), each stream
// in sequence order. A message is only placed once the other stream is known
// to hold nothing stored earlier: the merge takes stream-info snapshots and
// emits only what is at or before the older snapshot time minus a settle
// margin. So a command precedes the events it caused, and an event precedes
// the provisioning command it triggered. On one server this is exact; across
// a cluster it holds up to the clock skew between the two streams' leaders.
// Within one stream the order is always the stream's.
//
// # Resume, single writer, idempotence
//
// Every entry records the cursor: the last sequence of each source stream the
// trail includes up to and including it. A restarted auditor reads the last
// entry, checks it (its hash, the source message it records, its link to the
// entry before) and continues both streams after the cursor. Appends are
// expected-last-sequence publishes on the audit stream with Nats-Msg-Id set
// to the entry hash: only one writer can extend the chain, a retried append
// is a duplicate, and a second auditor (another licensebus process on the
// same NATS) that loses the race adopts the winner's entries and stands by
// until the winner stops writing. A message on the audit subject that is not
// a faithful continuation of the chain (a forgery) is never chained to: the
// auditor logs it and continues the chain from the last genuine entry, and
// verification reports it as inserted.
package audit
