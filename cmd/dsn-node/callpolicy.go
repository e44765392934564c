package main

import (
	"errors"
	"fmt"

	"go.uber.org/zap"

	"github.com/dsn-ims/dsn/node"
	"github.com/dsn-ims/dsn/sip/auth"
	"github.com/dsn-ims/dsn/sip/proxy"
)

// applyCallPolicy sets who may call DSN users and who may make the node
// relay out of the DSN: the -trusted peers, the Digest credentials of
// -auth-file for 407 challenges, and the -call-policy, whose default is
// challenge with -auth-file (only trusted peers, DSN nodes and phones
// with credentials may call, as only they may register), accept with
// -auth-open (registration is open anyway: whoever registers an address
// receives its calls) and with -dev.
func applyCallPolicy(o *options, log *zap.Logger, cfg *node.Config, deps *node.Deps) error {
	trusted, err := auth.ParseTrusted(o.trusted)
	if err != nil {
		return fmt.Errorf("-trusted: %w", err)
	}
	if trusted.Len() > 0 {
		deps.Trusted = trusted
	}
	digest, _ := deps.Authenticator.(*auth.Digest)
	if digest != nil {
		deps.Callers = digest
	}
	var policy proxy.CallPolicy
	switch {
	case o.callPolicy != "":
		if policy, err = proxy.ParseCallPolicy(o.callPolicy); err != nil {
			return fmt.Errorf("-call-policy %q: want accept, challenge or reject", o.callPolicy)
		}
	case digest != nil:
		policy = proxy.PolicyChallenge
	default:
		policy = proxy.PolicyAccept
	}
	if policy == proxy.PolicyChallenge && digest == nil {
		return errors.New("-call-policy challenge: needs -auth-file (the credentials callers authenticate with); " +
			"use -call-policy accept or reject with -auth-open")
	}
	cfg.Proxy.CallPolicy = policy
	fields := []zap.Field{zap.String("call_policy", string(policy)), zap.String("trusted", trusted.String())}
	switch {
	case o.dev:
		log.Info("dsn-node: call policy", fields...)
	case policy == proxy.PolicyAccept:
		log.Warn("dsn-node: -call-policy accept: anyone may call the DSN's users (relaying out of the DSN still needs a trusted peer, a DSN node or credentials)", fields...)
	default:
		log.Info("dsn-node: call policy", fields...)
	}
	return nil
}
