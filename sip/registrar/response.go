package registrar

import (
	"strconv"
	"strings"
	"time"

	"github.com/emiago/sipgo/sip"
	"go.uber.org/zap"
)

// dateLayout is the SIP-date of RFC 3261 section 20.17 (RFC 1123, GMT).
const dateLayout = "Mon, 02 Jan 2006 15:04:05 GMT"

// okResponse builds the 200 of step 8: every live binding of the AOR with
// its remaining lifetime, and a Date header. When the UA supports Path and
// the request stored one, the stored Path is echoed (RFC 3327 section 5.3).
func (r *Registrar) okResponse(req *sip.Request, rr *regRequest, bindings []Binding, now time.Time) *sip.Response {
	res := sip.NewResponseFromRequest(req, sip.StatusOK, "OK", nil)
	for i := range bindings {
		if h := contactHeader(&bindings[i], now); h != nil {
			res.AppendHeader(h)
		} else {
			r.log.Error("stored contact does not parse", zap.String("aor", rr.aor), zap.String("contact", bindings[i].Contact))
		}
	}
	if rr.echoPath && len(rr.contacts) > 0 && len(rr.path) > 0 {
		res.AppendHeader(sip.NewHeader("Path", strings.Join(rr.path, ", ")))
	}
	res.AppendHeader(sip.NewHeader("Date", now.UTC().Format(dateLayout)))
	r.log.Debug("REGISTER accepted", zap.String("aor", rr.aor), zap.Int("bindings", len(bindings)))
	return res
}

// contactHeader renders a binding for a 200 to REGISTER: its URI with
// expires (seconds left), q when set, and +sip.instance / reg-id when
// stored (RFC 5626 UAs match their binding by them). nil if the stored
// URI does not parse.
func contactHeader(b *Binding, now time.Time) *sip.ContactHeader {
	h := &sip.ContactHeader{Params: sip.NewParams()}
	if err := sip.ParseUri(b.Contact, &h.Address); err != nil {
		return nil
	}
	h.Params.Add("expires", strconv.FormatInt(b.Remaining(now), 10))
	if q := b.QString(); q != "" {
		h.Params.Add("q", q)
	}
	if b.Instance != "" {
		h.Params.Add("+sip.instance", `"`+b.Instance+`"`)
	}
	if b.RegID != 0 {
		h.Params.Add("reg-id", strconv.FormatUint(uint64(b.RegID), 10))
	}
	return h
}

func (r *Registrar) rejectResponse(req *sip.Request, rej *rejection) *sip.Response {
	code, reason := rej.code, rej.reason
	if code < 300 || code > 599 {
		// A hook's bad code must not become a 1xx/2xx, and a registrar
		// MUST NOT generate 6xx (RFC 3261 section 10.3).
		code, reason = sip.StatusInternalServerError, ""
	}
	if reason == "" {
		reason = "Rejected"
		if code == sip.StatusInternalServerError {
			reason = "Server Internal Error"
		}
	}
	res := sip.NewResponseFromRequest(req, code, reason, nil)
	for _, h := range rej.headers {
		res.AppendHeader(h)
	}
	r.log.Debug("REGISTER rejected", zap.Int("code", code), zap.String("reason", reason),
		zap.String("request_uri", req.Recipient.String()))
	return res
}

// formatSeconds renders d as whole seconds, rounded up.
func formatSeconds(d time.Duration) string {
	return strconv.FormatInt(int64((d+time.Second-1)/time.Second), 10)
}
