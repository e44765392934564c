package registrar

import (
	"context"
	"errors"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/emiago/sipgo/sip"
	"go.uber.org/zap"
)

// supportedOptions are the option-tags this registrar implements (RFC 3261
// section 8.2.2.3, 10.3 step 2).
var supportedOptions = [...]string{"path"}

// regRequest is a REGISTER that passed the checks of RFC 3261 section 10.3
// steps 1 to 6 and the per-contact checks of step 7; what is left is the
// read-modify-write of the AOR's bindings.
type regRequest struct {
	aor      string
	callID   string
	cseq     uint32
	wildcard bool         // "Contact: *" with "Expires: 0": remove all
	contacts []contactReq // neither these nor wildcard: fetch bindings
	path     []string     // Path stored with added or refreshed bindings
	echoPath bool         // the UA sent "Supported: path"
	src      Source
}

// contactReq is one Contact header field value of the request.
type contactReq struct {
	uri      sip.Uri
	text     string
	expires  time.Duration // granted lifetime; 0 removes the binding
	q        int
	instance string
	regID    uint32
}

// rejection is a final non-2xx answer decided while processing.
type rejection struct {
	code    int
	reason  string
	headers []sip.Header
}

func reject(code int, reason string, headers ...sip.Header) *rejection {
	return &rejection{code: code, reason: reason, headers: headers}
}

// check runs RFC 3261 section 10.3 steps 1 to 6 and the checks of step 7
// that need no stored state.
func (r *Registrar) check(ctx context.Context, req *sip.Request, src Source) (*regRequest, *rejection) {
	// A registrar "accepts only REGISTER requests" (10.3).
	if req.Method != sip.REGISTER {
		return nil, reject(sip.StatusMethodNotAllowed, "Method Not Allowed", sip.NewHeader("Allow", "REGISTER"))
	}
	to, callID, cseq := req.To(), req.CallID(), req.CSeq()
	if to == nil || req.From() == nil || callID == nil || cseq == nil {
		return nil, reject(sip.StatusBadRequest, "Missing To, From, Call-ID or CSeq")
	}
	if cseq.MethodName != sip.REGISTER {
		return nil, reject(sip.StatusBadRequest, "CSeq Method Does Not Match")
	}
	if *callID == "" || len(*callID) > MaxCallIDLen {
		return nil, reject(sip.StatusBadRequest, "Bad Call-ID")
	}

	// Step 1: do we hold bindings for the Request-URI's domain? We do not
	// proxy REGISTER onwards (that would make us an open relay), so the
	// answer for a foreign domain is 404: RFC 3261 section 21.4.4 says 404
	// "is also returned if the domain in the Request-URI does not match any
	// of the domains handled by the recipient of the request". 403 is kept
	// for authorisation failures (step 4).
	reqHost := normalizeHost(req.Recipient.Host)
	if !isSIPScheme(req.Recipient.Scheme) || !r.ourDomain(reqHost) {
		return nil, reject(sip.StatusNotFound, "Domain Not Served Here")
	}

	// Step 2: every option-tag in Require must be one we support (8.2.2.3).
	if bad := unsupportedTags(req); len(bad) > 0 {
		return nil, reject(sip.StatusBadExtension, "Bad Extension", sip.NewHeader("Unsupported", strings.Join(bad, ", ")))
	}

	// Step 3: authenticate.
	identity, rej := r.auth.Authenticate(ctx, req, src)
	if rej != nil {
		return nil, reject(rej.Code, rej.Reason, rej.Headers...)
	}

	// Steps 4 and 5: the AOR comes from To. An AOR that cannot be put in
	// canonical form (not sip/sips, no user part, bad escape) is not valid
	// for the domain: 404, before authorisation as there is nothing to
	// authorise.
	aor, aorHost, err := canonicalAOR(&to.Address)
	if err != nil {
		return nil, reject(sip.StatusNotFound, "Invalid Address-of-Record")
	}
	if !r.auth.Authorize(ctx, identity, aor, src) {
		return nil, reject(sip.StatusForbidden, "Forbidden")
	}
	if aorHost != reqHost {
		return nil, reject(sip.StatusNotFound, "Address-of-Record Not In This Domain")
	}

	rr := &regRequest{aor: aor, callID: string(*callID), cseq: cseq.SeqNo, src: src, echoPath: hasTag(req, "path", "supported", "k")}
	if rej := r.checkContacts(req, rr); rej != nil {
		return nil, rej
	}
	if rej := r.checkPath(req, rr); rej != nil {
		return nil, rej
	}
	return rr, nil
}

// checkContacts runs step 6 and the per-contact part of step 7.
func (r *Registrar) checkContacts(req *sip.Request, rr *regRequest) *rejection {
	contacts, err := contactValues(req)
	if err != nil {
		return reject(sip.StatusBadRequest, "Bad Contact")
	}
	headerExpires, hasHeaderExpires, err := expiresHeader(req)
	if err != nil {
		return reject(sip.StatusBadRequest, "Bad Expires")
	}
	// Step 6: "*" is valid only alone and with an expiration of zero.
	for _, c := range contacts {
		if !c.Address.Wildcard {
			continue
		}
		if len(contacts) != 1 || !hasHeaderExpires || headerExpires != 0 {
			return reject(sip.StatusBadRequest, "Wildcard Contact Needs Expires: 0 And No Other Contact")
		}
		rr.wildcard = true
		return nil
	}
	if len(contacts) > r.cfg.MaxContactsPerAOR {
		return reject(sip.StatusForbidden, "Too Many Contacts")
	}
	minSecs := uint64(r.cfg.MinExpires / time.Second)
	for _, c := range contacts {
		if isSIPScheme(c.Address.Scheme) && c.Address.Host == "" {
			return reject(sip.StatusBadRequest, "Bad Contact")
		}
		cr := contactReq{uri: c.Address, text: c.Address.String(), q: QNone}
		if len(cr.text) > MaxURILen {
			return reject(sip.StatusBadRequest, "Contact Too Long")
		}
		// Step 7: the expires parameter, else the Expires header, else the
		// local default. A malformed parameter counts as 3600 (RFC 3261
		// section 20.10).
		secs := uint64(r.cfg.DefaultExpires / time.Second)
		if v, ok := getFold(c.Params, "expires"); ok {
			if secs, err = parseDeltaSeconds(v); err != nil {
				secs = 3600
			}
		} else if hasHeaderExpires {
			secs = headerExpires
		}
		// "If and only if the requested expiration interval is greater
		// than zero AND smaller than one hour AND less than a
		// registrar-configured minimum" (MinExpires < 1h by Validate).
		if secs > 0 && secs < minSecs {
			return reject(sip.StatusIntervalToBrief, "Interval Too Brief",
				sip.NewHeader("Min-Expires", strconv.FormatUint(minSecs, 10)))
		}
		cr.expires = min(time.Duration(min(secs, math.MaxInt32))*time.Second, r.cfg.MaxExpires)
		if v, ok := getFold(c.Params, "q"); ok {
			if cr.q, ok = parseQ(v); !ok {
				return reject(sip.StatusBadRequest, "Bad q-value")
			}
		}
		if v, ok := getFold(c.Params, "+sip.instance"); ok {
			cr.instance = strings.Trim(v, `"`)
			if cr.instance == "" || len(cr.instance) > MaxInstanceLen {
				return reject(sip.StatusBadRequest, "Bad +sip.instance")
			}
		}
		if v, ok := getFold(c.Params, "reg-id"); ok {
			id, err := strconv.ParseUint(v, 10, 31)
			if err != nil || id == 0 {
				return reject(sip.StatusBadRequest, "Bad reg-id")
			}
			cr.regID = uint32(id)
		}
		rr.contacts = append(rr.contacts, cr)
	}
	return nil
}

// checkPath applies RFC 3327 section 5.3 and the PathSelf hook.
func (r *Registrar) checkPath(req *sip.Request, rr *regRequest) *rejection {
	var path []string
	for _, h := range req.GetHeaders("Path") {
		for _, v := range splitList(h.Value()) {
			var u sip.Uri
			if _, err := sip.ParseAddressValue(v, &u, nil); err != nil || len(v) > MaxURILen || !strings.Contains(v, "<") {
				return reject(sip.StatusBadRequest, "Bad Path")
			}
			path = append(path, v)
		}
	}
	// A Path the UA does not know about would be stored but never echoed;
	// like YXA and RFC 3327's 421 option we ask the UA to support it.
	if len(path) > 0 && !rr.echoPath {
		return reject(sip.StatusExtensionRequired, "Extension Required", sip.NewHeader("Require", "path"))
	}
	if len(rr.contacts) == 0 {
		return nil // nothing stored: fetch or wildcard removal
	}
	if r.pathSelf != nil {
		if self, add := r.pathSelf(rr.aor); add {
			if !strings.HasPrefix(self, "<") {
				self = "<" + self + ">"
			}
			var u sip.Uri
			if _, err := sip.ParseAddressValue(self, &u, nil); err != nil || len(self) > MaxURILen {
				r.log.Error("PathSelf returned an unusable URI", zap.String("uri", self))
				return reject(sip.StatusInternalServerError, "Server Internal Error")
			}
			path = append([]string{self}, path...)
		}
	}
	if len(path) > MaxPathLen {
		return reject(sip.StatusBadRequest, "Too Many Path Values")
	}
	rr.path = path
	return nil
}

// contactValues returns every Contact value of req, parsing those that
// were added as generic headers (requests built in-process).
func contactValues(req *sip.Request) ([]*sip.ContactHeader, error) {
	var out []*sip.ContactHeader
	for _, h := range req.GetHeaders("Contact") {
		if c, ok := h.(*sip.ContactHeader); ok {
			out = append(out, c)
			continue
		}
		for _, v := range splitList(h.Value()) {
			c := &sip.ContactHeader{}
			var err error
			if c.DisplayName, err = sip.ParseAddressValue(v, &c.Address, &c.Params); err != nil {
				return nil, err
			}
			out = append(out, c)
		}
	}
	return out, nil
}

// expiresHeader returns the request's Expires value in seconds. A value
// beyond 2^32-1 is treated as 2^32-1 (RFC 3261 section 20.19 bounds it).
func expiresHeader(req *sip.Request) (uint64, bool, error) {
	h := req.GetHeader("Expires")
	if h == nil {
		return 0, false, nil
	}
	v, err := parseDeltaSeconds(h.Value())
	return v, true, err
}

var errBadDelta = errors.New("registrar: bad delta-seconds")

func parseDeltaSeconds(s string) (uint64, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return 0, errBadDelta
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return 0, errBadDelta
		}
	}
	v, err := strconv.ParseUint(s, 10, 32)
	if err != nil {
		return math.MaxUint32, nil // all digits, so only too large
	}
	return v, nil
}

// unsupportedTags returns the option-tags of Require that we do not
// support, lower-cased (tokens compare case-insensitively, 7.3.1).
func unsupportedTags(req *sip.Request) []string {
	var bad []string
	for _, tag := range optionTags(req, "require") {
		known := false
		for _, s := range supportedOptions {
			known = known || tag == s
		}
		if !known {
			bad = append(bad, tag)
		}
	}
	return bad
}

// hasTag reports whether tag appears in any header called one of names.
func hasTag(req *sip.Request, tag string, names ...string) bool {
	for _, t := range optionTags(req, names...) {
		if t == tag {
			return true
		}
	}
	return false
}

func optionTags(req *sip.Request, names ...string) []string {
	var tags []string
	for _, name := range names {
		for _, h := range req.GetHeaders(name) {
			for _, t := range strings.Split(h.Value(), ",") {
				if t = strings.ToLower(strings.TrimSpace(t)); t != "" {
					tags = append(tags, t)
				}
			}
		}
	}
	return tags
}

// splitList splits a header value at the commas that separate its values,
// ignoring commas inside quotes or <>.
func splitList(v string) []string {
	var out []string
	inQuote, inAngle, escaped := false, false, false
	start := 0
	for i := 0; i < len(v); i++ {
		c := v[i]
		switch {
		case escaped:
			escaped = false
		case inQuote && c == '\\':
			escaped = true
		case c == '"' && !inAngle:
			inQuote = !inQuote
		case inQuote:
		case c == '<':
			inAngle = true
		case c == '>':
			inAngle = false
		case c == ',' && !inAngle:
			if s := strings.TrimSpace(v[start:i]); s != "" {
				out = append(out, s)
			}
			start = i + 1
		}
	}
	if s := strings.TrimSpace(v[start:]); s != "" {
		out = append(out, s)
	}
	return out
}
