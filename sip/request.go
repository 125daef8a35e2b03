package sip

// Requests we send: inside a dialog (the BYE and REFER of a call, the
// NOTIFYs of a subscription) through one builder, and the client
// transaction that waits for their final response.

import (
	"context"
	"fmt"

	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"
)

// request builds an in-dialog request from us (RFC 3261 §12.2.1.1).
func (d *Dialog) request(method sip.RequestMethod, body []byte, hdrs ...sip.Header) *sip.Request {
	return d.requestSeq(method, d.localCSeq.Add(1), body, hdrs...)
}

// requestSeq is request with a given CSeq: the ACK of a 2xx to our
// re-INVITE carries the INVITE's (RFC 3261 §13.2.2.4).
func (d *Dialog) requestSeq(method sip.RequestMethod, cseq uint32, body []byte, hdrs ...sip.Header) *sip.Request {
	target := d.invite.Recipient
	if c := d.invite.Contact(); c != nil {
		target = *c.Address.Clone()
	}
	from := &sip.FromHeader{Address: d.invite.To().Address, Params: sip.NewParams()}
	from.Params.Add("tag", d.localTag)
	to := &sip.ToHeader{DisplayName: d.invite.From().DisplayName, Address: d.invite.From().Address, Params: sip.NewParams()}
	to.Params.Add("tag", d.remoteTag)
	var routes []string
	for rr := range Headers(d.invite, "Record-Route") {
		routes = append(routes, rr.Value())
	}
	return d.s.Request(method, InDialog{
		Target: target, From: from, To: to, CallID: d.callID, CSeq: cseq,
		Routes: routes, Transport: d.invite.Transport(),
		// Symmetric signalling: requests go where the INVITE came from,
		// so that callers behind NAT get our BYE.
		Source: d.invite.Source(),
	}, body, hdrs...)
}

// InDialog is what a request inside a dialog we hold needs.
type InDialog struct {
	Target    sip.Uri // the remote target (Contact)
	From      *sip.FromHeader
	To        *sip.ToHeader
	CallID    string
	CSeq      uint32
	Routes    []string // the route set, in order (§12.1.1: the Record-Routes)
	Transport string
	// Source is where the request goes when the route set is empty; ""
	// sends it to Target.
	Source string
}

// Request builds a request inside a dialog (RFC 3261 §12.2.1.1): the BYE
// and REFER of a call, the NOTIFYs of a subscription (package mwi).
func (s *Server) Request(method sip.RequestMethod, dl InDialog, body []byte, hdrs ...sip.Header) *sip.Request {
	req := sip.NewRequest(method, dl.Target)
	mf := sip.MaxForwardsHeader(70)
	req.AppendHeader(dl.From)
	req.AppendHeader(dl.To)
	req.AppendHeader(sip.NewHeader("Call-ID", dl.CallID))
	req.AppendHeader(&sip.CSeqHeader{SeqNo: dl.CSeq, MethodName: method})
	req.AppendHeader(&mf)
	for _, r := range dl.Routes {
		req.AppendHeader(sip.NewHeader("Route", r))
	}
	req.AppendHeader(s.Contact(dl.Transport))
	for _, h := range hdrs {
		req.AppendHeader(h)
	}
	req.SetBody(body)
	req.SetTransport(dl.Transport)
	if r := req.Route(); r != nil {
		req.SetDestination(r.Address.HostPort())
	} else if dl.Source != "" {
		req.SetDestination(dl.Source)
	}
	return req
}

// Do sends a request in a new client transaction and waits for its final
// response.
func (s *Server) Do(ctx context.Context, req *sip.Request) (*sip.Response, error) {
	tx, err := s.client.TransactionRequest(ctx, req, sipgo.ClientRequestAddVia)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", req.Method, err)
	}
	defer tx.Terminate()
	for {
		select {
		case res := <-tx.Responses():
			if res.IsProvisional() {
				continue
			}
			return res, nil
		case <-tx.Done():
			return nil, fmt.Errorf("%s: %w", req.Method, tx.Err())
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
}

func (d *Dialog) bye(ctx context.Context) error {
	d.remoteHangup() // the dialog is over for us too
	res, err := d.s.Do(ctx, d.request(sip.BYE, nil))
	if err != nil {
		return err
	}
	if res.StatusCode >= 300 && res.StatusCode != 481 {
		return fmt.Errorf("BYE answered %d", res.StatusCode)
	}
	d.log.Info("call ended by us")
	return nil
}

// Refer asks the caller to call target (blind transfer, RFC 3515).
func (d *Dialog) Refer(ctx context.Context, target string) error {
	host := d.invite.Recipient.Host
	referTo := fmt.Sprintf("<sip:%s@%s>", target, host)
	res, err := d.s.Do(ctx, d.request(sip.REFER, nil,
		sip.NewHeader("Refer-To", referTo),
		sip.NewHeader("Referred-By", fmt.Sprintf("<sip:%s@%s>", d.target.Mailbox, host))))
	if err != nil {
		return err
	}
	if res.StatusCode >= 300 {
		return fmt.Errorf("REFER answered %d", res.StatusCode)
	}
	return nil
}
