package main

import (
	"errors"
	"fmt"
	"io"

	"github.com/dsn-ims/dsn/dnsreport"
)

// Exit statuses.
const (
	exitOK      = 0
	exitProblem = 1 // the command ran and found something wrong
	exitUsage   = 2 // bad usage, or a server could not be reached
)

// codedError is an error that decides the exit status itself.
type codedError struct {
	code int
	err  error
}

func (e *codedError) Error() string { return e.err.Error() }
func (e *codedError) Unwrap() error { return e.err }

// withCode gives err an exit status.
func withCode(code int, err error) error { return &codedError{code: code, err: err} }

// usageErrorf is a mistake in the command line or its inputs (exit 2).
func usageErrorf(format string, a ...any) error {
	return withCode(exitUsage, fmt.Errorf(format, a...))
}

// problemf is a negative answer: the servers were reached and said no
// (exit 1).
func problemf(format string, a ...any) error {
	return withCode(exitProblem, fmt.Errorf(format, a...))
}

// coder is a result that decides the exit status itself (dns-check,
// ring -all).
type coder interface{ exitCode() int }

// exitCode maps a command error onto the exit status. DNS servers that
// answered (NOTAUTH, REFUSED, ...) are problems; servers that did not
// answer are connection errors.
func exitCode(err error) int {
	var ce *codedError
	if errors.As(err, &ce) {
		return ce.code
	}
	ues := dnsreport.UpdateErrors(err)
	if len(ues) == 0 {
		return exitUsage
	}
	for _, ue := range ues {
		if ue.Rcode == dnsreport.NoReply && errors.Is(ue, dnsreport.ErrTimeout) {
			continue
		}
		return exitProblem
	}
	return exitUsage
}

// reportError prints err and, for DNS failures, one line per server with
// what to check.
func reportError(w io.Writer, cmd string, err error) {
	fmt.Fprintf(w, "dsnctl %s: %v\n", cmd, err)
	for _, ue := range dnsreport.UpdateErrors(err) {
		fmt.Fprintf(w, "  %s: %s: %s\n", ue.Server, ue.RcodeString(), ue.Hint())
	}
}
