package registrar

import (
	"context"
	"net/netip"
	"strings"

	"github.com/emiago/sipgo/sip"
	"go.uber.org/zap"
)

// ServeSIP adapts Handle to sipgo: srv.OnRegister(reg.ServeSIP). It takes
// the source from the transport layer (SourceOf), bounds the work by
// Config.RequestTimeout and the transaction's life, and sends the response
// on tx. It blocks until the response is handed to the transaction.
func (r *Registrar) ServeSIP(req *sip.Request, tx sip.ServerTransaction) {
	// Not sip.ServerTransactionContext: in sipgo v1.7.3 it cancels the
	// context as soon as it has registered its callback.
	ctx, cancel := context.WithTimeout(context.Background(), r.cfg.RequestTimeout)
	defer cancel()
	if !tx.OnTerminate(func(string, error) { cancel() }) {
		return // the transaction is already gone; nobody to answer
	}
	res := r.Handle(ctx, req, SourceOf(req))
	if err := tx.Respond(res); err != nil {
		r.log.Warn("sending REGISTER response failed", zap.Int("code", res.StatusCode), zap.Error(err))
	}
}

// SourceOf returns where sipgo received req: its transport and the remote
// address of the packet or connection (not the Via header). The zero
// Source if the address is unknown.
func SourceOf(req *sip.Request) Source {
	ap, err := netip.ParseAddrPort(req.Source())
	if err != nil {
		return Source{}
	}
	return Source{Transport: strings.ToUpper(req.Transport()), Addr: ap}.normalize()
}
