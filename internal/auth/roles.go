package auth

import (
	"fmt"
	"slices"

	"github.com/licensebus/licensebus/events"
	"github.com/nats-io/jwt/v2"
)

// Role is what an identity may do on the bus.
type Role string

// The roles. Only Service writes what licensebus records; the others act
// through commands and queries and read what their role lets them.
const (
	// Service is serve's own connections: everything.
	Service Role = "service"
	// Operator is an administrator with the CLI: every command and query,
	// reads like a Reader; no writes to streams or buckets.
	Operator Role = "operator"
	// Reader reads events, the audit trail, views and dead letters, and
	// asks fleet and SmartServer queries; it sends no commands.
	Reader Role = "reader"
	// SmartServer acts for one install code: its own commands and queries.
	SmartServer Role = "smartserver"
)

// Roles lists the roles credentials can be issued for, in the order the
// docs give them.
var Roles = []Role{Operator, Reader, SmartServer}

// ParseRole reads a role name.
func ParseRole(s string) (Role, error) {
	r := Role(s)
	if r == Service || slices.Contains(Roles, r) {
		return r, nil
	}
	return "", fmt.Errorf("unknown role %q: use operator, reader or smartserver", s)
}

// Identity is who a user JWT speaks for. The name is unique among the
// credentials of an account; a SmartServer's name is its install code.
type Identity struct {
	Name string
	Role Role
}

// Validate checks that the identity can be written into subjects: names
// are 1-64 of A-Za-z0-9_- like install codes, so each is one subject token.
func (id Identity) Validate() error {
	if !events.ValidInstallCode(id.Name) {
		return fmt.Errorf("name %q must be 1-64 letters, digits, '-' or '_'", id.Name)
	}
	if _, err := ParseRole(string(id.Role)); err != nil {
		return err
	}
	return nil
}

// InboxPrefix is where replies to an identity's requests go. Each identity
// may subscribe only under its own prefix, so nobody reads another's
// replies; nats.go takes it with nats.CustomInboxPrefix. The "lb" token
// keeps it apart from the default inboxes (_INBOX.<nuid>) of the service.
func InboxPrefix(name string) string { return "_INBOX.lb." + name }

// Streams and subjects the roles name. The audit, view and reactor names
// are owned elsewhere (internal/audit, projections, internal/bus); a test
// checks they agree.
const (
	auditStream     = "LICENSEBUS_AUDIT"
	auditHeads      = "LICENSEBUS_AUDIT_CHECKPOINTS"
	auditSubjects   = "lb.audit.>"
	ReactorsStream  = "KV_licensebus_reactors"
	CredsBucket     = "licensebus_creds"
	ClusterBucket   = "licensebus_cluster"
	APIPrefix       = "lb.api.v1."
	viewBucketStart = "licensebus_view_"
)

// ViewBuckets are the read models' KV buckets.
var ViewBuckets = []string{viewBucketStart + "licensing", viewBucketStart + "devices", viewBucketStart + "rollouts", viewBucketStart + "outcomes"}

// ReadableStreams are the streams a Reader (and an Operator) may read with
// JetStream consumers and direct gets: events, the audit trail and its
// signed heads, dead letters, the views and the reactors' checkpoints, the
// commands, which verifying the audit trail compares with, and the nodes'
// records and job leases, which cluster status shows. Not the credentials'
// records.
func ReadableStreams() []string {
	s := []string{events.CommandsStream, events.EventsStream, auditStream, auditHeads, events.DeadLettersStream}
	for _, b := range ViewBuckets {
		s = append(s, "KV_"+b)
	}
	return append(s, ReactorsStream, "KV_"+ClusterBucket)
}

// Permissions are the subject permissions the NATS server enforces for an
// identity. Anything not allowed is refused: publishing events, audit
// entries, dead letters or KV entries, and creating, changing or deleting
// streams, buckets and the service's durable consumers are allowed to the
// Service alone.
func Permissions(id Identity) jwt.Permissions {
	var p jwt.Permissions
	switch id.Role {
	case Service:
		return p // no restriction
	case SmartServer:
		ic := id.Name
		p.Pub.Allow.Add(
			"lb.cmd.device."+ic+".>",
			APIPrefix+"smartserver."+ic+".>",
		)
		p.Sub.Allow.Add(
			InboxPrefix(id.Name)+".>",
			"lb.evt.smartserver."+ic+".>",
			"lb.evt.rejected.smartserver."+ic,
		)
	case Reader, Operator:
		p.Pub.Allow.Add(readPublish()...)
		p.Pub.Deny.Add(serviceConsumers()...)
		p.Pub.Allow.Add(APIPrefix+"fleet.>", APIPrefix+"smartserver.*.>")
		p.Sub.Allow.Add(InboxPrefix(id.Name)+".>", events.AllEvents, auditSubjects, events.AllDeadLetters)
		if id.Role == Operator {
			// The credentials' stream's placement, for cluster status;
			// its records come through the admin API only.
			p.Pub.Allow.Add("lb.cmd.>", APIPrefix+"admin.>", "$JS.API.STREAM.INFO.KV_"+CredsBucket)
		}
	}
	return p
}

// ServiceDurables are the durable consumers of the service on the command
// stream: the handlers' work queues (handlers/device, cloud, rollout).
var ServiceDurables = []string{"device-commands", "cloud-commands", "rollout-commands"}

// serviceConsumers denies what reading the command stream would otherwise
// allow on the service's durables: pulling or acking their messages (the
// handlers would never see them), changing or deleting them.
func serviceConsumers() []string {
	var d []string
	for _, c := range ServiceDurables {
		d = append(d,
			"$JS.API.CONSUMER.CREATE."+events.CommandsStream+"."+c,
			"$JS.API.CONSUMER.CREATE."+events.CommandsStream+"."+c+".>",
			"$JS.API.CONSUMER.MSG.NEXT."+events.CommandsStream+"."+c,
			"$JS.API.CONSUMER.DELETE."+events.CommandsStream+"."+c,
			"$JS.ACK."+events.CommandsStream+"."+c+".>",
		)
	}
	return d
}

// Scope is the template of a role's scoped signing key: the role's
// permissions with {{name()}} for the user's name, which the NATS server
// fills in from each user JWT.
func Scope(role Role, key string) *jwt.UserScope {
	s := jwt.NewUserScope()
	s.Key, s.Role = key, string(role)
	s.Description = "licensebus " + string(role)
	s.Template.Permissions = Permissions(Identity{Name: "{{name()}}", Role: role})
	return s
}

// readPublish is what reading through JetStream takes: account and stream
// metadata, consumers on the readable streams (create, pull, ack, flow
// control, and deleting them, which clients do with their ephemeral ones),
// and direct gets. A consumer on a readable stream is another reader's,
// except the service's durables, which serviceConsumers keeps out of reach.
func readPublish() []string {
	p := []string{"$JS.API.INFO", "$JS.API.STREAM.NAMES", "$JS.API.STREAM.LIST"}
	for _, s := range ReadableStreams() {
		p = append(p, "$JS.API.STREAM.INFO."+s, "$JS.API.CONSUMER.NAMES."+s, "$JS.API.CONSUMER.LIST."+s, "$JS.API.CONSUMER.INFO."+s+".*")
	}
	for _, s := range ReadableStreams() {
		p = append(p,
			"$JS.API.CONSUMER.CREATE."+s,
			"$JS.API.CONSUMER.CREATE."+s+".>",
			"$JS.API.CONSUMER.MSG.NEXT."+s+".*",
			"$JS.API.CONSUMER.DELETE."+s+".*",
			"$JS.API.DIRECT.GET."+s,
			"$JS.API.DIRECT.GET."+s+".>",
			"$JS.API.STREAM.MSG.GET."+s,
			"$JS.ACK."+s+".>",
			"$JS.FC."+s+".>",
		)
	}
	return p
}
