package ssf

import (
	"context"
	"fmt"
	"strconv"

	"github.com/writhq/writ/broker"
	"github.com/writhq/writ/wire/ssfwire"
)

// pending is one SET waiting for delivery on a stream: a feed signal or a
// control event.
type pending struct {
	jti    string
	seq    uint64 // the feed signal's seq; 0 for a control event
	typ    string
	sub    *ssfwire.Subject
	body   any
	signal *broker.Signal
}

// scanPage is how many feed signals one store read returns while scanning.
const scanPage = 256

// scan returns up to max feed SETs due on s after its cursor: signals the
// stream delivers and the receiver has not acknowledged. On the way it moves
// the cursor over everything before the first of them (signals of types the
// stream does not carry, acknowledgements made out of order). It also
// returns whether more are due and the last seq it looked at. Call with
// s.mu held and the stream enabled.
func (t *Transmitter) scan(ctx context.Context, s *stream, max int) (due []pending, more bool, upto uint64, err error) {
	after := s.acked
	skipTo := s.acked
	blocked := false
	upto = after
	for {
		page, err := t.signals(ctx, after, scanPage)
		if err != nil {
			return nil, false, 0, fmt.Errorf("read revocation feed: %w", err)
		}
		for i := range page {
			sig := &page[i]
			after, upto = sig.Seq, sig.Seq
			typ, sub, body, ok := signalEvent(sig, t.issuer)
			if !ok || !s.delivers(typ) || s.ackedAbove[sig.Seq] || !t.forReceiver(sig, s.receiver) {
				if !blocked {
					skipTo = sig.Seq
					delete(s.ackedAbove, sig.Seq)
				}
				continue
			}
			blocked = true
			if len(due) >= max {
				more = true
				upto = sig.Seq - 1
				break
			}
			due = append(due, pending{jti: feedJTI(s.tag, sig.Seq), seq: sig.Seq, typ: typ, sub: sub, body: body, signal: sig})
		}
		if more || len(page) < scanPage {
			break
		}
	}
	if skipTo > s.acked {
		s.acked = skipTo
		s.dirty = true
		for seq := range s.ackedAbove {
			if seq <= skipTo {
				delete(s.ackedAbove, seq)
			}
		}
	}
	return due, more, upto, nil
}

// controlDue returns up to max control events of s. Call with s.mu held.
func controlDue(s *stream, max int) []pending {
	n := min(max, len(s.control))
	out := make([]pending, 0, n)
	for _, c := range s.control[:n] {
		out = append(out, pending{jti: c.jti, typ: c.typ, sub: ssfwire.StreamSubject(s.id), body: c.body})
	}
	return out
}

// setFor returns the SET for p on a stream whose receiver is aud: a feed
// SET is made once per audience (fanout.go), a control event per stream.
func (t *Transmitter) setFor(p pending, aud string) (string, error) {
	if p.seq != 0 {
		return t.feedSET(p, aud)
	}
	return t.sign(p, aud)
}

// sign makes the SET for p on a stream whose receiver is aud.
func (t *Transmitter) sign(p pending, aud string) (string, error) {
	txn := ""
	if p.seq != 0 {
		txn = strconv.FormatUint(p.seq, 10)
	}
	claims := buildClaims(t.issuer, aud, p.jti, txn, t.b.Now(), p.typ, p.sub, p.body)
	set, err := t.b.Sign(ssfwire.SETType, claims)
	if err != nil {
		return "", fmt.Errorf("sign SET: %w", err)
	}
	return set, nil
}

// forReceiver reports whether a signal is for a stream's receiver: a signal
// about one grant or token goes to the receivers serving its resource,
// when the transmitter knows who serves what.
func (t *Transmitter) forReceiver(sig *broker.Signal, receiver string) bool {
	if t.opts.Serves == nil || sig.Audience == "" || sig.AgentID != "" || sig.All {
		return true
	}
	return t.opts.Serves(receiver, sig.Audience)
}
