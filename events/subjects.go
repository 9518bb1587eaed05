package events

import "strings"

// Stream names say what they hold.
const (
	CommandsStream    = "LICENSEBUS_COMMANDS"
	EventsStream      = "LICENSEBUS_EVENTS"
	DeadLettersStream = "LICENSEBUS_DEADLETTERS"
)

// Subject roots.
const (
	CloudCommands  = "lb.cmd.cloud.>"
	DeviceCommands = "lb.cmd.device.>"
	AllEvents      = "lb.evt.>"
	AllRejections  = "lb.evt.rejected.>"
	AllDeadLetters = "lb.dlq.>"
)

// CommandSubject is where a command of info's type for data is published.
func CommandSubject(info Info, data Data) string {
	switch info.Side {
	case CloudSide:
		return "lb.cmd.cloud." + info.Verb
	case RolloutSide:
		return "lb.cmd.rollout." + info.Verb
	}
	return "lb.cmd.device." + data.Key() + "." + info.Verb
}

// EventSubject is where an event of info's type for data is appended.
func EventSubject(info Info, data Data) string {
	if r, ok := data.(*Rejected); ok {
		return RejectionSubject(r.Aggregate, r.ID)
	}
	return "lb.evt." + info.Aggregate + "." + data.Key() + "." + info.Verb
}

// RejectionSubject is where rejections of commands aimed at aggregate id go.
// Aggregates that could not be read from the command land on "unknown".
func RejectionSubject(aggregate, id string) string {
	if aggregate == "" || !ValidInstallCode(aggregate) {
		aggregate = "unknown"
	}
	if id == "" || !ValidInstallCode(id) {
		id = "unknown"
	}
	return "lb.evt.rejected." + aggregate + "." + id
}

// AggregateFilter matches every event of one aggregate, e.g.
// "lb.evt.license.<id>.>"; it is the subject of expected-sequence appends.
func AggregateFilter(aggregate, id string) string {
	return "lb.evt." + aggregate + "." + id + ".>"
}

// CommandInstallCode returns the install code token of a device command
// subject, or "".
func CommandInstallCode(subject string) string {
	const p = "lb.cmd.device."
	if !strings.HasPrefix(subject, p) {
		return ""
	}
	rest := subject[len(p):]
	if i := strings.IndexByte(rest, '.'); i > 0 {
		return rest[:i]
	}
	return ""
}
