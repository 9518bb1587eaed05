//go:build race

package main

// raceEnabled lets tests build the binary with the flags they run with, so
// the build reuses the test's compiled packages.
const raceEnabled = true
