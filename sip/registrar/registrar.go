package registrar

import (
	"fmt"
	"time"

	"go.uber.org/zap"
)

// Registrar processes REGISTER requests for the domains of its Config and
// answers location look-ups for the proxy. It keeps no state of its own
// between calls: bindings live in the BindingStore. Safe for concurrent use.
type Registrar struct {
	cfg      Config
	domains  map[string]struct{}
	store    BindingStore
	clock    func() time.Time
	log      *zap.Logger
	auth     Authenticator
	pathSelf PathSelfFunc
}

// PathSelfFunc decides whether this node puts itself at the top of the
// stored Path of a binding for aor, and with which URI (e.g.
// "<sip:10.0.0.7:5060;lr>"; a bare URI is wrapped in <>). The node wires it
// to "add myself when I am not the AOR's home node": calls for the AOR are
// then delivered through the node that holds the phone's NAT flow. It is
// called once per REGISTER that adds or refreshes bindings and must not
// block.
type PathSelfFunc func(aor string) (uri string, add bool)

// Option customises a Registrar.
type Option func(*Registrar)

// WithAuthenticator installs the hook for steps 3 and 4 of RFC 3261
// section 10.3. The default is AllowAll.
func WithAuthenticator(a Authenticator) Option {
	return func(r *Registrar) {
		if a != nil {
			r.auth = a
		}
	}
}

// WithPathSelf installs the PathSelfFunc. The default adds nothing.
func WithPathSelf(f PathSelfFunc) Option {
	return func(r *Registrar) { r.pathSelf = f }
}

// New returns a Registrar. A nil clock means time.Now and a nil logger
// logs nothing; the store is required.
func New(cfg Config, store BindingStore, clock func() time.Time, logger *zap.Logger, opts ...Option) (*Registrar, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if store == nil {
		return nil, fmt.Errorf("%w: nil BindingStore", ErrInvalidConfig)
	}
	if clock == nil {
		clock = time.Now
	}
	if logger == nil {
		logger = zap.NewNop()
	}
	r := &Registrar{
		cfg:     cfg,
		domains: make(map[string]struct{}, len(cfg.Domains)),
		store:   store,
		clock:   clock,
		log:     logger.Named("registrar"),
		auth:    AllowAll{},
	}
	for _, d := range cfg.Domains {
		r.domains[normalizeHost(d)] = struct{}{}
	}
	for _, o := range opts {
		o(r)
	}
	return r, nil
}

// Config returns the configuration the Registrar runs with.
func (r *Registrar) Config() Config {
	c := r.cfg
	c.Domains = append([]string(nil), r.cfg.Domains...)
	return c
}

func (r *Registrar) ourDomain(host string) bool {
	_, ok := r.domains[host]
	return ok
}
