package bench

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"
)

// A phase's error names the phase; one that ran out of time says so,
// unless the whole run was stopped.
func TestInPhase(t *testing.T) {
	stopped, cancel := context.WithCancel(context.Background())
	cancel()
	deadline := fmt.Errorf("wait: %w", context.DeadlineExceeded)
	tests := []struct {
		name string
		ctx  context.Context
		err  error
		want string // "" for no error
	}{
		{"no error", context.Background(), nil, ""},
		{"a phase's own deadline", context.Background(), deadline, "activations phase ran past its deadline: wait: context deadline exceeded"},
		{"another error", context.Background(), errors.New("boom"), "activations phase: boom"},
		{"the run stopped", stopped, context.Canceled, "activations phase: context canceled"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := inPhase(tt.ctx, "activations", tt.err)
			if tt.want == "" {
				if err != nil {
					t.Fatalf("got %v, want nil", err)
				}
				return
			}
			if err == nil || err.Error() != tt.want {
				t.Fatalf("got %v, want %q", err, tt.want)
			}
			if !errors.Is(err, tt.err) || !strings.HasPrefix(err.Error(), "activations") {
				t.Fatalf("%v does not wrap %v", err, tt.err)
			}
		})
	}
}

// An open-loop sender stops when its context ends, also when it is behind
// (its next send is already due) and so would never sleep.
func TestSleepUntil(t *testing.T) {
	stopped, cancel := context.WithCancel(context.Background())
	cancel()
	past, future := time.Now().Add(-time.Second), time.Now().Add(time.Hour)
	tests := []struct {
		name string
		ctx  context.Context
		at   time.Time
		want error
	}{
		{"due, running", context.Background(), past, nil},
		{"due, stopped", stopped, past, context.Canceled},
		{"not due, stopped", stopped, future, context.Canceled},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := sleepUntil(tt.ctx, tt.at); !errors.Is(err, tt.want) {
				t.Fatalf("got %v, want %v", err, tt.want)
			}
		})
	}
}
