package main

import (
	"github.com/licensebus/licensebus/internal/auth"
	"github.com/nats-io/nats.go"
)

// credsOptions connect as the user of a creds file, with the inbox its
// role may subscribe to.
func credsOptions(c *auth.Creds) []nats.Option {
	opts := []nats.Option{nats.UserJWTAndSeed(c.JWT, string(c.Seed))}
	if p := c.InboxPrefix(); p != "" {
		opts = append(opts, nats.CustomInboxPrefix(p))
	}
	return opts
}
