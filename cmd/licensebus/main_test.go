package main

import (
	"context"
	"os"
	"testing"
)

// TestMain lets `bench` run its NATS server process from the test binary:
// started with childEnv set, the binary is the CLI, not the tests.
func TestMain(m *testing.M) {
	if os.Getenv(childEnv) == "1" {
		os.Exit(run(context.Background(), os.Args[1:], os.Stdin, os.Stdout, os.Stderr, os.Getenv))
	}
	os.Exit(m.Run())
}
